package catalogs

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one finding of Load or Validate: a rule's stable code (labels.md; the warnings
// are listed in docs/validation.md), where it is, and what is wrong with what would be right.
// L-codes are errors, W-codes warnings.
type Problem struct {
	Code    string // "L021", "W002"
	File    string // path in the label tree, slash-separated ("products/1003/…/3003.json")
	Pointer string // JSON pointer into File ("/targeting/inServicePublishInfo/flooring"); "" for the whole file
	Message string

	scope scope
}

// scope says which labels a problem invalidates, for --skip-invalid.
type scope struct {
	level      scopeLevel
	product    string
	submission string
	label      string
}

type scopeLevel uint8

const (
	scopeCatalog    scopeLevel = iota // the tree cannot be built at all
	scopeProduct                      // every label of a product
	scopeSubmission                   // every label of a submission
	scopeLabel                        // one label
	scopeNone                         // a warning, or a file no label depends on
)

// Warning reports whether the problem is a warning (never fails a build).
func (p Problem) Warning() bool { return strings.HasPrefix(p.Code, "W") }

// String is the one-line form every command prints: CODE file#pointer: message.
func (p Problem) String() string {
	return fmt.Sprintf("%s %s#%s: %s", p.Code, p.File, p.Pointer, p.Message)
}

// Problems is a list of findings.
type Problems []Problem

// Sort orders problems by file, pointer, code and message: the same tree always gives the
// same list in the same order.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Pointer != b.Pointer {
			return a.Pointer < b.Pointer
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
}

// Errors counts the problems that are not warnings.
func (ps Problems) Errors() int {
	n := 0
	for _, p := range ps {
		if !p.Warning() {
			n++
		}
	}
	return n
}

// Codes returns the distinct codes, sorted.
func (ps Problems) Codes() []string {
	seen := map[string]bool{}
	var codes []string
	for _, p := range ps {
		if !seen[p.Code] {
			seen[p.Code] = true
			codes = append(codes, p.Code)
		}
	}
	sort.Strings(codes)
	return codes
}

// problemSink collects problems while a tree is read and checked.
type problemSink struct {
	list Problems
}

func (s *problemSink) add(code, file, pointer string, sc scope, format string, args ...any) {
	if strings.HasPrefix(code, "W") {
		sc = scope{level: scopeNone}
	}
	s.list = append(s.list, Problem{Code: code, File: file, Pointer: pointer, Message: fmt.Sprintf(format, args...), scope: sc})
}
