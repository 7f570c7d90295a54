package store

import "time"

// Retention caps what JetStream keeps: every stream, bucket and object
// store has a size cap, and all but the tokens a maximum age.
type Retention struct {
	// Records and their identity keys, the logs, queued messages, the audit log.
	Records, Logs, Queue, Audit                               time.Duration
	RecordBytes, LogBytes, QueueBytes, AuditBytes, TokenBytes int64
	// Replicas is how many copies a JetStream cluster keeps of each
	// stream, bucket and object store (0: 1; see DefaultReplicas).
	Replicas int
}

// DefaultRetention keeps records and logs 30 days, queued messages 7
// days and the audit log a year.
func DefaultRetention() Retention {
	const day = 24 * time.Hour
	return Retention{Records: 30 * day, Logs: 30 * day, Queue: 7 * day, Audit: 365 * day,
		RecordBytes: 256 << 20, LogBytes: 4 << 30, QueueBytes: 64 << 20, AuditBytes: 256 << 20, TokenBytes: 16 << 20}
}
