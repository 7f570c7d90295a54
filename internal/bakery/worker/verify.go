package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery"
)

// Verifier verifies an image a bake made in region (and environment, ""
// the configured one), as aminate verify does, against the bakery's
// trust file.
type Verifier func(ctx context.Context, region, environment, image string) *bakery.Provenance

// verifyFor bounds one image's verification (it reads the whole disk).
const verifyFor = 10 * time.Minute

// verify records each new image's verification in it; a failed one does
// not fail the bake (the image is made), and is logged.
func (w *Worker) verify(ctx context.Context, msg jetstream.Msg, rec *bakery.Record, images []bakery.Image, log *slog.Logger) {
	if w.Verify == nil {
		return
	}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // the bake's message stays in progress meanwhile
		tick := time.NewTicker(w.AckWait / 3)
		defer tick.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-tick.C:
				msg.InProgress()
			}
		}
	}()
	for i := range images {
		vctx, cancel := context.WithTimeout(ctx, verifyFor)
		p := w.Verify(vctx, rec.Request.Region, rec.Request.Environment, images[i].ID)
		cancel()
		images[i].Provenance = p
		switch {
		case p == nil:
		case p.OK:
			log.Info("image verified", "image", images[i].ID, "signer", p.Signer, "key_id", p.KeyID, "lineage_ok", p.LineageOK)
		default:
			log.Warn("image failed verification", "image", images[i].ID, "err", p.Error)
		}
	}
}

// provenanceOf is a bake's verdict: its first image's, or the first that
// failed; nil if none was checked.
func provenanceOf(images []bakery.Image) *bakery.Provenance {
	var first *bakery.Provenance
	for _, im := range images {
		if im.Provenance != nil && !im.Provenance.OK {
			return im.Provenance
		}
		if first == nil {
			first = im.Provenance
		}
	}
	return first
}
