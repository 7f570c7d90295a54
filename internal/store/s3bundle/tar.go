package s3bundle

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/aminator-go/aminator/internal/sys/sparse"
)

// The tar stream is what GNU tar writes for `tar -c -h -S --owner 0
// --group 0 NAME` (its default gnu format): one member, owner and group 0
// named root, a sparse file as an old-GNU 'S' member whose map lists the
// data runs (4 in the header, 21 in each extension block, a final
// zero-length run at the end when the file ends in a hole), then two zero
// blocks and padding to the 10240-byte record.
const (
	tarBlock  = 512
	tarRecord = 20 * tarBlock
)

// tarHeader lays out the member header (and its sparse extension blocks).
type tarHeader struct {
	name  string
	mode  int64
	mtime time.Time
	size  int64           // the file's real size
	runs  []sparse.Extent // the data runs; nil for a regular member
}

// stored is how many data bytes follow the header.
func (h *tarHeader) stored() int64 {
	if h.runs == nil {
		return h.size
	}
	var n int64
	for _, r := range h.runs {
		n += r.Len
	}
	return n
}

// blocks encodes the header block and any sparse extension blocks.
func (h *tarHeader) blocks() ([]byte, error) {
	if len(h.name) == 0 || len(h.name) > 100 {
		return nil, fmt.Errorf("tar: member name %q must be 1 to 100 bytes", h.name)
	}
	b := make([]byte, tarBlock)
	copy(b[0:100], h.name)
	putOctal(b[100:108], h.mode)
	putOctal(b[108:116], 0)
	putOctal(b[116:124], 0)
	putNumber(b[124:136], h.stored())
	putNumber(b[136:148], h.mtime.Unix())
	b[156] = '0'
	copy(b[257:265], "ustar  \x00")
	copy(b[265:297], "root")
	copy(b[297:329], "root")
	if h.runs == nil {
		return checksum(b), nil
	}
	b[156] = 'S'
	runs := h.sparseMap()
	rest := putRuns(b[386:482], runs, 4)
	putNumber(b[483:495], h.size)
	out, flagAt := b, 482 // the "more sparse blocks follow" flag of the last block
	for len(rest) > 0 {
		out[len(out)-tarBlock+flagAt] = 1
		ext := make([]byte, tarBlock)
		rest = putRuns(ext[:504], rest, 21)
		out, flagAt = append(out, ext...), 504
	}
	checksum(out[:tarBlock])
	return out, nil
}

// sparseMap is the map GNU tar writes: the data runs, and a zero-length
// run at the end of the file when it ends in a hole (or has no data).
func (h *tarHeader) sparseMap() []sparse.Extent {
	runs := h.runs
	if n := len(runs); n == 0 || runs[n-1].Off+runs[n-1].Len < h.size {
		runs = append(runs[:n:n], sparse.Extent{Off: h.size})
	}
	return runs
}

// putRuns writes up to max runs into b and returns those left over.
func putRuns(b []byte, runs []sparse.Extent, max int) []sparse.Extent {
	for i := 0; i < max && len(runs) > 0; i++ {
		putNumber(b[i*24:i*24+12], runs[0].Off)
		putNumber(b[i*24+12:i*24+24], runs[0].Len)
		runs = runs[1:]
	}
	return runs
}

// checksum fills in a header block's checksum as GNU tar writes it.
func checksum(b []byte) []byte {
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b[:tarBlock] {
		sum += int64(c)
	}
	s := fmt.Sprintf("%06o", sum)
	copy(b[148:], s)
	b[154], b[155] = 0, ' '
	return b
}

// putOctal writes n as zero-padded octal ending in NUL.
func putOctal(b []byte, n int64) {
	s := strconv.FormatInt(n, 8)
	for i := range b[:len(b)-1] {
		b[i] = '0'
	}
	copy(b[len(b)-1-len(s):], s)
	b[len(b)-1] = 0
}

// putNumber writes n in octal, or in GNU's base-256 form when it does not
// fit (sizes of 8 GiB and more).
func putNumber(b []byte, n int64) {
	if n < 1<<(3*(len(b)-1)) {
		putOctal(b, n)
		return
	}
	for i := len(b) - 1; i > 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	b[0] = 0x80
}

// writeTar writes the whole tar stream of the file src (h describes it) to w.
func writeTar(w io.Writer, src *os.File, h *tarHeader, buf []byte, stop func() error) error {
	hdr, err := h.blocks()
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	runs := h.runs
	if runs == nil {
		runs = []sparse.Extent{{Off: 0, Len: h.size}}
	}
	for _, r := range runs {
		if err := copyRun(w, src, r, buf, stop); err != nil {
			return err
		}
	}
	n := h.stored()
	pad := (tarBlock-n%tarBlock)%tarBlock + 2*tarBlock
	total := int64(len(hdr)) + n + pad
	pad += (tarRecord - total%tarRecord) % tarRecord
	_, err = w.Write(make([]byte, pad))
	return err
}

// copyRun copies one data run of src to w.
func copyRun(w io.Writer, src *os.File, r sparse.Extent, buf []byte, stop func() error) error {
	for off := r.Off; off < r.Off+r.Len; {
		if err := stop(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), r.Off+r.Len-off))
		k, err := src.ReadAt(buf[:n], off)
		if k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read %s at %d: %w", src.Name(), off, err)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}
