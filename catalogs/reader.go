package catalogs

import (
	"strings"
)

// reader walks one parsed file and reports what it cannot use as problems, each with the
// JSON pointer of the value. Accessors return the zero value after reporting, so decoding
// goes on and every problem of a file is found in one pass.
type reader struct {
	file  string
	sink  *problemSink
	scope scope
}

func (r *reader) problem(code, ptr, format string, args ...any) {
	r.sink.add(code, r.file, ptr, r.scope, format, args...)
}

// pointerJoin appends a member name or index to a JSON pointer (RFC 6901 escaping).
func pointerJoin(ptr, name string) string {
	if strings.ContainsAny(name, "~/") {
		name = strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
	}
	return ptr + "/" + name
}

func pointerIndex(ptr string, i int) string { return pointerJoin(ptr, itoa(i)) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// get returns a member that is present and not null, or nil; a required member that is
// absent or null is reported (L002).
func (r *reader) get(obj *jsonValue, ptr, name string, required bool) *jsonValue {
	v := obj.member(name)
	if v == nil || v.kind == jsonNull {
		if required {
			r.problem("L002", pointerJoin(ptr, name), "required field %q is missing", name)
		}
		return nil
	}
	return v
}

// typed returns v when it has the wanted kind; otherwise reports L002 and returns nil.
func (r *reader) typed(v *jsonValue, ptr string, want jsonKind) *jsonValue {
	if v == nil {
		return nil
	}
	if v.kind != want {
		r.problem("L002", ptr, "must be %s, not %s", jsonKindNames[want], jsonKindNames[v.kind])
		return nil
	}
	return v
}

func (r *reader) object(obj *jsonValue, ptr, name string, required bool) *jsonValue {
	return r.typed(r.get(obj, ptr, name, required), pointerJoin(ptr, name), jsonObject)
}

func (r *reader) array(obj *jsonValue, ptr, name string, required bool) []*jsonValue {
	v := r.typed(r.get(obj, ptr, name, required), pointerJoin(ptr, name), jsonArray)
	if v == nil {
		return nil
	}
	return v.items
}

func (r *reader) str(obj *jsonValue, ptr, name string, required bool) string {
	v := r.typed(r.get(obj, ptr, name, required), pointerJoin(ptr, name), jsonString)
	if v == nil {
		return ""
	}
	return v.text
}

func (r *reader) boolean(obj *jsonValue, ptr, name string, required bool) bool {
	v := r.typed(r.get(obj, ptr, name, required), pointerJoin(ptr, name), jsonBool)
	return v != nil && v.b
}

// oneOf reads a string member that must be one of a closed set of values.
func (r *reader) oneOf(obj *jsonValue, ptr, name string, required bool, allowed ...string) string {
	s := r.str(obj, ptr, name, required)
	if s == "" {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	r.problem("L002", pointerJoin(ptr, name), "%q is not one of %s", s, strings.Join(allowed, ", "))
	return ""
}

// stringList reads an array of strings.
func (r *reader) stringList(obj *jsonValue, ptr, name string) []string {
	items := r.array(obj, ptr, name, false)
	out := make([]string, 0, len(items))
	for i, it := range items {
		if v := r.typed(it, pointerIndex(pointerJoin(ptr, name), i), jsonString); v != nil {
			out = append(out, v.text)
		}
	}
	return out
}

// id reads a 64-bit id given as a JSON integer or a decimal string, exactly.
func (r *reader) id(obj *jsonValue, ptr, name string, required bool) string {
	v := r.get(obj, ptr, name, required)
	if v == nil {
		return ""
	}
	return r.idValue(v, pointerJoin(ptr, name))
}

func (r *reader) idValue(v *jsonValue, ptr string) string {
	if (v.kind == jsonNumber || v.kind == jsonString) && ValidID(v.text) {
		return v.text
	}
	r.problem("L002", ptr, "must be a 64-bit id: an unsigned integer below 2^64, written in decimal")
	return ""
}

// integer reads a non-negative JSON integer below max.
func (r *reader) integer(obj *jsonValue, ptr, name string, required bool, max uint64) (uint64, bool) {
	v := r.typed(r.get(obj, ptr, name, required), pointerJoin(ptr, name), jsonNumber)
	if v == nil {
		return 0, false
	}
	n, ok := parseUint(v.text)
	if !ok || n > max {
		r.problem("L002", pointerJoin(ptr, name), "must be a whole number from 0 to %d, not %s", max, v.text)
		return 0, false
	}
	return n, true
}

// strict reports every member of an extension object that is not in allowed (L003).
func (r *reader) strict(obj *jsonValue, ptr string, allowed ...string) {
	if obj == nil {
		return
	}
next:
	for _, m := range obj.members {
		for _, a := range allowed {
			if m.name == a {
				continue next
			}
		}
		r.problem("L003", pointerJoin(ptr, m.name), "unknown field %q in a driveway extension object (known: %s); a typo here could silently change what is offered",
			m.name, strings.Join(allowed, ", "))
	}
}

// malformed reports an L015 problem.
func (r *reader) malformed(ptr, format string, args ...any) {
	r.problem("L015", ptr, format, args...)
}
