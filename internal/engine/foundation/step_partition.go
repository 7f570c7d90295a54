package foundation

import (
	"context"
	"fmt"
	"strings"

	"github.com/aminator-go/aminator/internal/engine/bake"
)

// GPT partition types.
const (
	linuxFS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
)

// partitionDisk writes the layout's partition table: gpt puts the root on
// partition 1, uefi an EFI system partition (1) before the root (2, last,
// so it can grow), hybrid and grub-uefi as grub.go says.
type partitionDisk struct{ b *builder }

// partitioned says the layout has a partition table.
func (b *builder) partitioned(*bake.State) bool { return partitionTable(b.o.Layout) != "" }

func (partitionDisk) Name() string { return "partition" }

func (st partitionDisk) Run(ctx context.Context, s *bake.State) error {
	table := partitionTable(st.b.o.Layout)
	if st.b.seed != nil {
		table = withGUIDs(table, st.b.seed)
	}
	return st.b.host.Partition(ctx, s.Device, table)
}

// withGUIDs gives a partition table (sfdisk's input) the disk GUID and
// each partition's, derived from seed, which sfdisk otherwise makes at
// random.
func withGUIDs(table string, seed []byte) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(table, "\n") {
		body := strings.TrimSuffix(line, "\n")
		switch {
		case body == "":
		case strings.HasPrefix(body, "label:"):
			fmt.Fprintf(&b, "%s\nlabel-id: %s\n", body, strings.ToUpper(derivedUUID(seed, "GPT disk")))
			continue
		default:
			_, name, _ := strings.Cut(body, "name=")
			fmt.Fprintf(&b, "%s, uuid=%s\n", body, strings.ToUpper(derivedUUID(seed, "GPT partition "+name)))
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// partitionTable is the layout's table, as sfdisk's input ("": none).
func partitionTable(layout string) string {
	switch layout {
	case "gpt":
		return "label: gpt\nstart=2048, type=" + linuxFS + ", name=root\n"
	case "uefi":
		return "label: gpt\nstart=2048, size=256MiB, type=" + espType + ", name=esp\ntype=" + linuxFS + ", name=root\n"
	case "hybrid":
		// Debian's cloud disk: BIOS boot (14) and ESP (15) first, the root
		// (1) last so that it can grow. sfdisk numbers a line by the digits
		// of the name before its colon.
		return "label: gpt\n" +
			"p14 : start=2048, size=3MiB, type=" + biosBootType + ", name=bios\n" +
			"p15 : start=8192, size=124MiB, type=" + espType + ", name=esp\n" +
			"p1 : start=262144, type=" + linuxFS + ", name=root\n"
	case "grub-uefi":
		// The same without the BIOS boot partition, as Debian's arm64 disk.
		return "label: gpt\n" +
			"p15 : start=8192, size=124MiB, type=" + espType + ", name=esp\n" +
			"p1 : start=262144, type=" + linuxFS + ", name=root\n"
	}
	return ""
}
