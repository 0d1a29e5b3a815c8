package eventbus

import (
	"encoding/json"
	"unicode/utf8"
)

// The quick check over the body's bytes, so a valid event is not decoded into interface{}
// values at all (that decode was the largest cost left after gojsonschema). The body must be
// one valid JSON text (json.Valid), so the walk only has to find tokens, not judge syntax; a
// string is compared as encoding/json would decode it (the raw bytes when they need no
// unescaping, else encoding/json's own decode), a number as its literal (json.Number), and an
// object with a key twice is left to gojsonschema, which sees the last value only.

type jsonWalk struct {
	data []byte
	at   int
}

// validJSON is true when data certainly is one JSON text that satisfies the node.
func (n *quickNode) validJSON(data []byte) bool {
	return json.Valid(data) && n.walk(data)
}

// walk is validJSON for data known to be one valid JSON text.
func (n *quickNode) walk(data []byte) bool {
	w := &jsonWalk{data: data}
	w.space()
	return w.value(n)
}

func (w *jsonWalk) space() { w.at = skipSpace(w.data, w.at) }

// str reads the string at w.at and returns its decoded text.
func (w *jsonWalk) str() (string, bool) {
	start, plain := w.at, true
	w.at++
	for w.data[w.at] != '"' {
		if c := w.data[w.at]; c == '\\' {
			plain = false
			w.at++
		} else if c >= utf8.RuneSelf {
			plain = false
		}
		w.at++
	}
	w.at++
	raw := w.data[start:w.at]
	if plain || (utf8.Valid(raw) && !containsByte(raw, '\\')) {
		return string(raw[1 : len(raw)-1]), true
	}
	var text string
	return text, json.Unmarshal(raw, &text) == nil
}

func containsByte(data []byte, b byte) bool {
	for _, c := range data {
		if c == b {
			return true
		}
	}
	return false
}

// scalar reads a number or a literal and returns its text.
func (w *jsonWalk) scalar() []byte {
	start := w.at
	for w.at < len(w.data) {
		switch w.data[w.at] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return w.data[start:w.at]
		}
		w.at++
	}
	return w.data[start:w.at]
}

// skip passes over one value.
func (w *jsonWalk) skip() {
	switch w.data[w.at] {
	case '"':
		w.str()
	case '{', '[':
		for depth := 0; ; {
			switch w.data[w.at] {
			case '"':
				w.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.at++
			if depth == 0 {
				return
			}
		}
	default:
		w.scalar()
	}
}

func (w *jsonWalk) value(n *quickNode) bool {
	if n == nil {
		w.skip()
		return true
	}
	n = n.target()
	if n.pass {
		w.skip()
		return true
	}
	if n.unknown {
		return false
	}
	start := w.at
	for _, all := range n.allOf {
		w.at = start
		if !w.value(all) {
			return false
		}
	}
	if len(n.anyOf) > 0 {
		any := false
		for _, branch := range n.anyOf {
			w.at = start
			if any = w.value(branch); any {
				break
			}
		}
		if !any {
			return false
		}
	}
	w.at = start
	switch w.data[start] {
	case '{':
		return w.object(n)
	case '[':
		return w.array(n)
	case '"':
		text, ok := w.str()
		return ok && n.validString(text)
	case 't', 'f':
		w.scalar()
		return (n.types == 0 || n.types&kindBoolean != 0) && n.strings == nil
	case 'n':
		w.scalar()
		return (n.types == 0 || n.types&kindNull != 0) && n.strings == nil
	}
	return n.validNumber(json.Number(w.scalar()))
}

func (w *jsonWalk) array(n *quickNode) bool {
	if n.types != 0 && n.types&kindArray == 0 || n.strings != nil {
		return false
	}
	var seen map[string]bool
	if n.unique {
		seen = map[string]bool{}
	}
	size := int64(0)
	w.at++
	for {
		w.space()
		if w.data[w.at] == ']' {
			w.at++
			break
		}
		if n.unique {
			if w.data[w.at] != '"' {
				return false // distinct strings are distinct JSON texts; other items: gojsonschema
			}
			text, ok := w.str()
			if !ok || seen[text] || (n.items != nil && !n.items.valid(text)) {
				return false
			}
			seen[text] = true
		} else if !w.value(n.items) {
			return false
		}
		size++
		w.space()
		if w.data[w.at] == ',' {
			w.at++
		}
	}
	return size >= n.minItems && (n.maxItems < 0 || size <= n.maxItems)
}

func (w *jsonWalk) object(n *quickNode) bool {
	if n.types != 0 && n.types&kindObject == 0 || n.strings != nil || len(n.required) > 64 {
		return false
	}
	var buffer [16]string
	keys := buffer[:0]
	var seen map[string]bool
	var found uint64
	w.at++
	for {
		w.space()
		if w.data[w.at] == '}' {
			w.at++
			break
		}
		key, ok := w.str()
		if !ok {
			return false
		}
		if len(keys) < 16 {
			for _, other := range keys {
				if other == key {
					return false
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]bool, 32)
				for _, other := range keys {
					seen[other] = true
				}
			}
			if seen[key] {
				return false
			}
			seen[key] = true
		}
		keys = append(keys, key)
		for i, name := range n.required {
			if name == key {
				found |= 1 << i
			}
		}
		if n.names != nil && !n.names.valid(key) {
			return false
		}
		w.space()
		w.at++ // :
		w.space()
		if property, declared := n.props[key]; declared {
			if !w.value(property) {
				return false
			}
		} else if n.noAdditional || !w.value(n.additional) {
			return false
		}
		w.space()
		if w.data[w.at] == ',' {
			w.at++
		}
	}
	size := int64(len(keys))
	return found == 1<<len(n.required)-1 && size >= n.minProps && (n.maxProps < 0 || size <= n.maxProps)
}
