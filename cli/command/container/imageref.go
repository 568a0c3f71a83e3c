package container

import (
	"strings"

	"github.com/distribution/reference"
)

// checkImageRef validates the image argument of create and run as docker's
// CLI does (reference.ParseAnyReference), with its error.
//
// Why not just call it: its grammar is regular expressions that the
// reference package compiles on first use, for what is nearly always a
// plain name like "busybox" or "registry:5000/team/app:1.2": `hako create`
// took 25-29 ms of CPU with them and 22-24 without (docs/cli.md). plainImageRef
// accepts only what the grammar surely accepts; anything else (a digest,
// an image ID, an IPv6 host, uppercase, anything odd) goes to the parser,
// which gives the answer and the error.
func checkImageRef(s string) error {
	if plainImageRef(s) {
		return nil
	}
	_, err := reference.ParseAnyReference(s)
	return err
}

// plainImageRef reports whether s is [DOMAIN/]PATH[:TAG] in the simple
// form of distribution's grammar: DOMAIN a first component holding a '.'
// or a ':' or being "localhost", made of host labels ([A-Za-z0-9], '-'
// inside) joined by '.', with an optional :PORT; PATH components of
// lowercase letters and digits joined by '.', '_', "__" or runs of '-';
// TAG [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. False means "ask the parser",
// not "invalid".
func plainImageRef(s string) bool {
	name, tag := s, ""
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		name, tag = s[:i], s[i+1:]
		if !validTag(tag) {
			return false
		}
	}
	// The parser counts the length of the name it completed
	// ("docker.io/library/" + a familiar name); leave long ones to it.
	if name == "" || len(name) > reference.RepositoryNameTotalLengthMax-len("docker.io/library/") {
		return false
	}
	comps := strings.Split(name, "/")
	path := comps
	if first := comps[0]; len(comps) > 1 && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if !validDomain(first) {
			return false
		}
		path = comps[1:]
	}
	for _, c := range path {
		if !validPathComponent(c) {
			return false
		}
	}
	// A lone 64-digit hex name is an image ID to the parser, and refused
	// as a repository name: its call.
	return !(len(comps) == 1 && tag == "" && len(name) == 64)
}

func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func validDomain(d string) bool {
	host, port, hasPort := strings.Cut(d, ":")
	if hasPort {
		if port == "" {
			return false
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// validPathComponent: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
func validPathComponent(c string) bool {
	if c == "" || !isLowerAlnum(c[0]) || !isLowerAlnum(c[len(c)-1]) {
		return false
	}
	for i := 1; i < len(c); i++ {
		switch ch := c[i]; {
		case isLowerAlnum(ch):
		case ch == '.' || ch == '_':
			// A separator is followed by an alphanumeric, except the
			// second '_' of "__".
			next := c[i+1] // c ends with an alphanumeric, so i+1 < len(c)
			if ch == '_' && next == '_' && i+2 < len(c) && isLowerAlnum(c[i+2]) {
				i++
				continue
			}
			if !isLowerAlnum(next) {
				return false
			}
		case ch == '-':
			// runs of '-' are one separator; the run ends before an alphanumeric
		default:
			return false
		}
	}
	return !strings.Contains(c, "-.") && !strings.Contains(c, "-_")
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }
