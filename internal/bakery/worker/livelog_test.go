package worker

import "testing"

// Only a stage's own start line is a stage: slog text or JSON.
func TestStageLines(t *testing.T) {
	for line, want := range map[string]string{
		`time=x level=INFO msg="stage create volume" stage="create volume"`: "create volume",
		`time=x level=INFO msg="stage mount" stage=mount`:                   "mount",
		`{"level":"INFO","msg":"stage provision","stage":"provision"}`:      "provision",
		`time=x level=DEBUG msg="stage done" stage=mount took=1s`:           "",
		`time=x level=INFO msg="dpkg: stage mount" stage=mount`:             "",
		`time=x level=INFO msg="stage x" stage="y"`:                         "",
		`{"msg":"stage done","stage":"done"}`:                               "done",
		`level=INFO msg="stage a`:                                           "",
	} {
		got, _ := stageOf([]byte(line))
		if got != want {
			t.Errorf("%s: %q, want %q", line, got, want)
		}
	}
}
