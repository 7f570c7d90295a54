package logging

import (
	"regexp"
	"strings"
)

// A package manager says why it failed in a few recognisable lines among
// many: apt's "E: ", dpkg's "dpkg: error processing ..." followed by the
// reason on an indented line, dpkg-deb's own errors, dnf's "Error:" and
// "No match for argument", rpm's "error:", and the kernel's "No space left
// on device" in any tool's words. Cause finds the one line that says why
// and the lines around it worth showing.

// causeRules are tried in order; the first that matches a line of the
// output gives the cause. A rule's line is the cause itself unless next is
// set: then the (indented) line after it is.
var causeRules = []struct {
	re   *regexp.Regexp
	next bool
}{
	{re: regexp.MustCompile(`No space left on device`)},
	{re: regexp.MustCompile(`^dpkg-deb( \(subprocess\))?: `)},
	{re: regexp.MustCompile(`^dpkg: error processing `), next: true},
	{re: regexp.MustCompile(`^dpkg: (error|warning: subprocess|.*subprocess .* returned error exit status)`)},
	{re: regexp.MustCompile(`^E: `)},
	{re: regexp.MustCompile(`^No match for argument: `)},
	{re: regexp.MustCompile(`^Error: `)},
	{re: regexp.MustCompile(`^error: `)},
}

// apt's E: lines that only say dpkg failed; dpkg's own lines say why.
var genericE = regexp.MustCompile(`^E: (Sub-process .* returned an error code|Unmet dependencies\. Try|Errors were encountered)`)

// errorLine marks a line as part of a failure report.
var errorLine = regexp.MustCompile(`(?i)(^E: |^W: |error|failed|cannot|can't|unable|denied|no such|not found|no space left|no match|returned .*exit status|unexpected end)`)

// noise is progress chatter that is never part of why something failed.
var noise = regexp.MustCompile(`^(Reading package lists|Building dependency tree|Reading state information|\(Reading database|Selecting previously unselected|Preparing to unpack|Unpacking |Get:\d|Hit:\d|Ign:\d|Fetched |Need to get|After this operation|The following|  [a-z0-9+.-]+( |$)|[0-9]+ upgraded|Last metadata expiration|Dependencies resolved|Package .* is already installed)`)

// maxRelevant bounds the lines shown under the cause.
const maxRelevant = 10

// Cause returns the line of a command's output that says why it failed
// ("" if none is recognised) and the last lines worth showing with it:
// from a few lines before the first error line to the end, without
// progress chatter.
func Cause(output string) (cause string, relevant []string) {
	lines := strings.Split(strings.TrimRight(output, "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \r")
	}
	cause = findCause(lines)
	first := -1
	for i, l := range lines {
		if errorLine.MatchString(l) && !noise.MatchString(l) {
			first = i
			break
		}
	}
	if first < 0 {
		return cause, nil
	}
	start := first
	for k := 0; k < 3 && start > 0 && !noise.MatchString(lines[start-1]) && lines[start-1] != ""; k++ {
		start--
	}
	for _, l := range lines[start:] {
		if l != "" && !noise.MatchString(l) {
			relevant = append(relevant, l)
		}
	}
	if len(relevant) > maxRelevant {
		relevant = relevant[len(relevant)-maxRelevant:]
	}
	return cause, relevant
}

func findCause(lines []string) string {
	for _, r := range causeRules {
		for i, l := range lines {
			if !r.re.MatchString(l) || genericE.MatchString(l) {
				continue
			}
			if r.next {
				if i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") {
					return "dpkg: " + strings.TrimSpace(lines[i+1])
				}
				continue
			}
			if strings.HasPrefix(l, " ") && i > 0 && strings.HasPrefix(lines[i-1], "dpkg: ") {
				return "dpkg: " + strings.TrimSpace(l) // dpkg's reason, under its "error processing" line
			}
			return strings.TrimSpace(l)
		}
	}
	return ""
}
