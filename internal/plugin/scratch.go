package plugin

// ScratchVolumer is a cloud whose volumes need no durability of their
// own: what is kept of a bake's volume is its snapshot, which the cloud
// makes durable itself (the local cloud: a file whose blocks the snapshot
// store clones, writes back and syncs). The filesystem on such a volume
// may skip its cache flushes (MountOptions.NoFlush): every fsync and
// journal commit in it would otherwise sync the volume's file and the
// store below it, for nothing.
type ScratchVolumer interface {
	ScratchVolumes() bool
}

// ScratchVolumes reports whether c's volumes need no durability of their
// own.
func ScratchVolumes(c Cloud) bool {
	s, ok := c.(ScratchVolumer)
	return ok && s.ScratchVolumes()
}
