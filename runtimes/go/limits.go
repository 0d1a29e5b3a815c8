package eventbus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Limits on what a consumer will parse, decided once for every language (the Python SDK's
// eventbus/_limits.py; docs/reliability.md, "Bad input"). Each refusal is parked with the same
// reason as in Python:
//
//	body_too_large       a body over MaxBodyBytes (1 MiB), before anything reads it
//	too_deep             arrays and objects nested deeper than MaxDepth (64)
//	invalid_json         not JSON, malformed UTF-8, a lone surrogate escape, a number beyond a double
//	duplicate_key        {"a": 1, "a": 2}: parsers disagree on which value wins
//	number_out_of_range  an integer outside int64, which Go, Java and SQL cannot hold

// InputLimits is what a consumer refuses to parse; the zero value means the defaults.
type InputLimits struct {
	MaxBodyBytes       int  // default 1 MiB
	MaxDepth           int  // default 64
	AllowDuplicateKeys bool // default false: duplicate keys are parked
}

// DefaultLimits are the limits Python applies by default.
var DefaultLimits = InputLimits{MaxBodyBytes: 1 << 20, MaxDepth: 64}

func (l InputLimits) withDefaults() InputLimits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultLimits.MaxBodyBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}

// CheckBody applies the limits to a JSON body; nil when it may be parsed and validated.
func CheckBody(body []byte, limits InputLimits) *EnvelopeError {
	limits = limits.withDefaults()
	if len(body) > limits.MaxBodyBytes {
		return &EnvelopeError{"body_too_large", fmt.Sprintf("body of %d bytes exceeds the limit of %d", len(body), limits.MaxBodyBytes)}
	}
	if bytes.Count(body, []byte("["))+bytes.Count(body, []byte("{")) > limits.MaxDepth {
		if depth := nesting(body); depth > limits.MaxDepth {
			return &EnvelopeError{"too_deep", fmt.Sprintf("JSON nested %d levels deep exceeds the limit of %d", depth, limits.MaxDepth)}
		}
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		return &EnvelopeError{"invalid_json", "body is not valid UTF-8 JSON"}
	}
	s := scanner{body: body, duplicates: !limits.AllowDuplicateKeys}
	return s.value()
}

// nesting is the deepest nesting of arrays and objects, ignoring brackets inside strings.
func nesting(body []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			if depth > deepest {
				deepest = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// scanner walks a body that json.Valid accepted, checking what encoding/json lets through:
// duplicate keys, integers beyond int64, numbers beyond a double and lone surrogate escapes.
type scanner struct {
	body       []byte
	at         int
	duplicates bool
}

func (s *scanner) space() { s.at = skipSpace(s.body, s.at) }

// skipSpace is the index of the first byte at or after at that is not JSON whitespace.
func skipSpace(data []byte, at int) int {
	for at < len(data) {
		switch data[at] {
		case ' ', '\t', '\n', '\r':
			at++
		default:
			return at
		}
	}
	return at
}

func (s *scanner) value() *EnvelopeError {
	s.space()
	switch c := s.body[s.at]; {
	case c == '{':
		return s.object()
	case c == '[':
		s.at++
		s.space()
		if s.body[s.at] == ']' {
			s.at++
			return nil
		}
		for {
			if err := s.value(); err != nil {
				return err
			}
			s.space()
			c := s.body[s.at]
			s.at++
			if c == ']' {
				return nil
			}
		}
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default: // true, false, null
		for s.at < len(s.body) && s.body[s.at] >= 'a' && s.body[s.at] <= 'z' {
			s.at++
		}
		return nil
	}
}

func (s *scanner) object() *EnvelopeError {
	s.at++ // {
	var keys [][]byte
	var seen map[string]bool
	for {
		s.space()
		if s.body[s.at] == '}' {
			s.at++
			return nil
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.duplicates {
			if bytes.IndexByte(key, '\\') >= 0 {
				var decoded string
				_ = json.Unmarshal(key, &decoded)
				key = []byte(strconv.Quote(decoded))
			}
			if len(keys) < 16 {
				for _, other := range keys {
					if bytes.Equal(other, key) {
						return duplicateKey(key)
					}
				}
				keys = append(keys, key)
			} else {
				if seen == nil {
					seen = make(map[string]bool, 32)
					for _, other := range keys {
						seen[string(other)] = true
					}
				}
				if seen[string(key)] {
					return duplicateKey(key)
				}
				seen[string(key)] = true
			}
		}
		s.space()
		s.at++ // :
		if err := s.value(); err != nil {
			return err
		}
		s.space()
		if s.body[s.at] == ',' {
			s.at++
		}
	}
}

func duplicateKey(quoted []byte) *EnvelopeError {
	var key string
	_ = json.Unmarshal(quoted, &key)
	return &EnvelopeError{"duplicate_key", fmt.Sprintf("JSON object has the key '%s' more than once", key)}
}

// str returns the raw string token, quotes included.
func (s *scanner) str() ([]byte, *EnvelopeError) {
	start := s.at
	s.at++
	for {
		c := s.body[s.at]
		if c == '"' {
			s.at++
			return s.body[start:s.at], nil
		}
		if c != '\\' {
			s.at++
			continue
		}
		if s.body[s.at+1] != 'u' {
			s.at += 2
			continue
		}
		code, _ := strconv.ParseUint(string(s.body[s.at+2:s.at+6]), 16, 16)
		s.at += 6
		switch {
		case code >= 0xDC00 && code <= 0xDFFF:
			return nil, loneSurrogate()
		case code >= 0xD800 && code <= 0xDBFF:
			if s.at+6 > len(s.body) || s.body[s.at] != '\\' || s.body[s.at+1] != 'u' {
				return nil, loneSurrogate()
			}
			low, _ := strconv.ParseUint(string(s.body[s.at+2:s.at+6]), 16, 16)
			if low < 0xDC00 || low > 0xDFFF {
				return nil, loneSurrogate()
			}
			s.at += 6
		}
	}
}

func loneSurrogate() *EnvelopeError {
	return &EnvelopeError{"invalid_json", "body is not valid UTF-8 JSON: a lone surrogate escape"}
}

func (s *scanner) number() *EnvelopeError {
	start, integer := s.at, true
	for s.at < len(s.body) {
		c := s.body[s.at]
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
		} else if !(c == '-' || c == '+' || c >= '0' && c <= '9') {
			break
		}
		s.at++
	}
	token := s.body[start:s.at]
	if integer {
		if len(token) >= 19 {
			if _, err := strconv.ParseInt(string(token), 10, 64); err != nil {
				shown := string(token)
				if len(shown) > 40 {
					shown = shown[:40]
				}
				return &EnvelopeError{"number_out_of_range", fmt.Sprintf("integer %s does not fit in 64 bits", shown)}
			}
		}
		return nil
	}
	if _, err := strconv.ParseFloat(string(token), 64); err != nil {
		return &EnvelopeError{"invalid_json", fmt.Sprintf("body is not valid UTF-8 JSON: number %s is out of range", token)}
	}
	return nil
}
