package testutil

import (
	"regexp"
	"strconv"
	"strings"
)

var (
	redraw = regexp.MustCompile(`^\x1b\[(\d+)A\x1b\[J`)
	ansi   = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
)

// TerminalLines replays what a terminal shows at the end of raw output:
// its lines, with bars redrawn in place (cursor up N lines, erase to the
// end), carriage returns and colours dropped.
func TerminalLines(raw string) []string {
	raw = strings.ReplaceAll(raw, "\r", "")
	var lines []string
	var cur strings.Builder
	for i := 0; i < len(raw); {
		if m := redraw.FindStringSubmatch(raw[i:]); m != nil {
			n, _ := strconv.Atoi(m[1])
			lines = lines[:max(0, len(lines)-n)]
			cur.Reset()
			i += len(m[0])
			continue
		}
		if raw[i] == '\n' {
			lines = append(lines, ansi.ReplaceAllString(cur.String(), ""))
			cur.Reset()
		} else {
			cur.WriteByte(raw[i])
		}
		i++
	}
	if cur.Len() > 0 {
		lines = append(lines, ansi.ReplaceAllString(cur.String(), ""))
	}
	return lines
}
