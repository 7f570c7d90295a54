package sbom

import "strings"

// debFields are a stanza's single-line fields, by lower-case name; a
// folded field keeps its first line.
func debFields(stanza string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(stanza, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return f
}
