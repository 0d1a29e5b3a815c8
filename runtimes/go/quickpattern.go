package eventbus

import "regexp/syntax"

// Most patterns in contracts are one character class over a whole string, ^[A-Za-z0-9_-]+$,
// checked for every id in every event; Go's regexp takes microseconds each. charset answers
// "certainly matches" for such a pattern with a table of its ASCII members: a string of one or
// more (or, for *, any number of) bytes all in the table is a string of ASCII characters all in
// the class, which the regexp matches. Anything else goes to the regexp itself.

type charset struct {
	allowed  [128]bool
	nonEmpty bool // +: at least one character
}

// charsetOf parses pattern as regexp.Compile does (Perl syntax: ^ and $ are the text's ends);
// nil unless it is ^, one character class with + or *, $.
func charsetOf(pattern string) *charset {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 || re.Sub[0].Op != syntax.OpBeginText || re.Sub[2].Op != syntax.OpEndText {
		return nil
	}
	repeat := re.Sub[1]
	if (repeat.Op != syntax.OpPlus && repeat.Op != syntax.OpStar) || len(repeat.Sub) != 1 || repeat.Sub[0].Op != syntax.OpCharClass {
		return nil
	}
	set := &charset{nonEmpty: repeat.Op == syntax.OpPlus}
	ranges := repeat.Sub[0].Rune
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r < 128; r++ {
			set.allowed[r] = true
		}
	}
	return set
}

// matches is true only when the pattern certainly matches text.
func (c *charset) matches(text string) bool {
	if c == nil || (c.nonEmpty && text == "") {
		return false
	}
	for i := 0; i < len(text); i++ {
		if b := text[i]; b >= 128 || !c.allowed[b] {
			return false
		}
	}
	return true
}
