package cert

import (
	"encoding/binary"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/provkit/provkit/firmware/apk/internal/ber"
)

// Name is a distinguished name: a sequence of RDNs, each a set of attribute values, in encoded
// order (least specific first, usually C=... and last CN=...).
type Name struct {
	Raw  []byte // the Name as encoded
	RDNs []RDN
}

// RDN is a relative distinguished name: one or more attribute values.
type RDN []AVA

// AVA is one attribute type and value.
type AVA struct {
	OID   string // attribute type, e.g. "2.5.4.3" (CN)
	Tag   uint32 // universal tag of the value (UTF8String, PrintableString, ...)
	Class int
	Value []byte // contents octets of the value
	Raw   []byte // the value's whole encoding
}

// ParseName reads an encoded Name (a SEQUENCE OF SET OF AttributeTypeAndValue).
func ParseName(v ber.TLV) (Name, error) {
	if err := v.Expect(ber.TagSequence); err != nil {
		return Name{}, err
	}
	rdns, err := v.Children()
	if err != nil {
		return Name{}, err
	}
	n := Name{Raw: v.Raw, RDNs: make([]RDN, 0, len(rdns))}
	for _, r := range rdns {
		if err := r.Expect(ber.TagSet); err != nil {
			return Name{}, err
		}
		avas, err := r.Children()
		if err != nil {
			return Name{}, err
		}
		if len(avas) == 0 {
			return Name{}, malformed(r.Offset, "empty relative distinguished name")
		}
		rdn := make(RDN, 0, len(avas))
		for _, a := range avas {
			if err := a.Expect(ber.TagSequence); err != nil {
				return Name{}, err
			}
			kids, err := a.Children()
			if err != nil {
				return Name{}, err
			}
			if len(kids) != 2 {
				return Name{}, malformed(a.Offset, "attribute type and value has %d elements, want 2", len(kids))
			}
			oid, err := kids[0].ReadOID()
			if err != nil {
				return Name{}, err
			}
			rdn = append(rdn, AVA{OID: oid, Tag: kids[1].Tag, Class: kids[1].Class, Value: kids[1].Content, Raw: kids[1].Raw})
		}
		n.RDNs = append(n.RDNs, rdn)
	}
	return n, nil
}

// keywords maps attribute OIDs to the keywords Java's X500Name.toString prints.
var keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "T",
	"1.3.6.1.4.1.42.2.11.2.1":    "IP",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"2.5.4.46":                   "DNQ",
	"2.5.4.4":                    "SURNAME",
	"2.5.4.42":                   "GIVENNAME",
	"2.5.4.43":                   "INITIALS",
	"2.5.4.44":                   "GENERATION",
	"1.2.840.113549.1.9.1":       "EMAILADDRESS",
	"0.9.2342.19200300.100.1.1":  "UID",
	"2.5.4.5":                    "SERIALNUMBER",
}

// String formats the name as apksigner prints a certificate DN (Java's X500Name.toString):
// RDNs most specific first, separated by ", "; values of a multi-valued RDN separated by " + "
// in encoded order; KEYWORD=value, or OID.n.n.n=value for attributes without a keyword; values
// that are not character strings as #hex of their encoding.
func (n Name) String() string {
	var sb strings.Builder
	for i := len(n.RDNs) - 1; i >= 0; i-- {
		if i != len(n.RDNs)-1 {
			sb.WriteString(", ")
		}
		for j, a := range n.RDNs[i] {
			if j > 0 {
				sb.WriteString(" + ")
			}
			a.writeTo(&sb)
		}
	}
	return sb.String()
}

// String formats one attribute as Java's AVA.toString does.
func (a AVA) String() string {
	var sb strings.Builder
	a.writeTo(&sb)
	return sb.String()
}

func (a AVA) writeTo(sb *strings.Builder) {
	if k, ok := keywords[a.OID]; ok {
		sb.WriteString(k)
	} else {
		sb.WriteString("OID.")
		sb.WriteString(a.OID)
	}
	sb.WriteByte('=')
	s, ok := a.Text()
	if !ok {
		sb.WriteByte('#')
		const hexDigits = "0123456789abcdef"
		for _, c := range a.derEncoding() {
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&0x0f])
		}
		return
	}
	sb.WriteString(quoteValue(s))
}

// derEncoding re-encodes the value with a minimal definite length, as Java's DerValue.toByteArray.
func (a AVA) derEncoding() []byte {
	if len(a.Raw) == 0 {
		return nil
	}
	out := []byte{}
	// Identifier octets are copied from the original encoding.
	idLen := 1
	if a.Raw[0]&0x1f == 0x1f {
		for idLen < len(a.Raw) && a.Raw[idLen]&0x80 != 0 {
			idLen++
		}
		idLen++
	}
	if idLen > len(a.Raw) {
		return a.Raw
	}
	out = append(out, a.Raw[:idLen]...)
	n := len(a.Value)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	default:
		var lb []byte
		for x := n; x > 0; x >>= 8 {
			lb = append([]byte{byte(x)}, lb...)
		}
		out = append(out, 0x80|byte(len(lb)))
		out = append(out, lb...)
	}
	return append(out, a.Value...)
}

// Text decodes the value when it is a character string type Java treats as a string, with
// Java's decoders (malformed input becomes U+FFFD). ok is false for other types.
func (a AVA) Text() (s string, ok bool) {
	if a.Class != ber.ClassUniversal {
		return "", false
	}
	switch a.Tag {
	case ber.TagUTF8String:
		return toValidUTF8(a.Value), true
	case ber.TagPrintableString, ber.TagIA5String, ber.TagGeneralString:
		return ascii(a.Value), true
	case ber.TagT61String:
		return latin1(a.Value), true
	case ber.TagBMPString:
		return utf16BE(a.Value), true
	case ber.TagUniversalString:
		return utf32BE(a.Value), true
	}
	return "", false
}

func toValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r) // RuneError for each invalid byte
		b = b[size:]
	}
	return sb.String()
}

func ascii(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String()
}

func latin1(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func utf16BE(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.BigEndian.Uint16(b[i:]))
	}
	s := string(utf16.Decode(u))
	if len(b)%2 != 0 {
		s += string(utf8.RuneError)
	}
	return s
}

func utf32BE(b []byte) string {
	var sb strings.Builder
	for i := 0; i+3 < len(b); i += 4 {
		r := rune(binary.BigEndian.Uint32(b[i:]))
		if !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		sb.WriteRune(r)
	}
	if len(b)%4 != 0 {
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}

// isPrintableStringChar reports whether c may appear in an ASN.1 PrintableString.
func isPrintableStringChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune(" '()+,-./:=?", c)
}

// quoteValue applies Java's RFC 1779-style quoting of an attribute value: the whole value is
// put in double quotes when it holds a special character, starts or ends with white space or
// has two white spaces in a row; '"' and '\' are escaped with a backslash.
func quoteValue(v string) string {
	const escapees = ",+=\n<>#;\\\""
	r := []rune(v)
	alreadyQuoted := len(r) > 1 && r[0] == '"' && r[len(r)-1] == '"'
	quote := false
	prevWhite := false
	var sb strings.Builder
	for i, c := range r {
		if alreadyQuoted && (i == 0 || i == len(r)-1) {
			sb.WriteRune(c)
			continue
		}
		if isPrintableStringChar(c) || strings.ContainsRune(escapees, c) {
			if !quote && ((i == 0 && (c == ' ' || c == '\n')) || strings.ContainsRune(escapees, c)) {
				quote = true
			}
			if c != ' ' && c != '\n' {
				if c == '"' || c == '\\' {
					sb.WriteByte('\\')
				}
				prevWhite = false
			} else {
				if !quote && prevWhite {
					quote = true
				}
				prevWhite = true
			}
			sb.WriteRune(c)
		} else {
			prevWhite = false
			sb.WriteRune(c)
		}
	}
	out := sb.String()
	if len(out) > 0 && (out[len(out)-1] == ' ' || out[len(out)-1] == '\n') {
		quote = true
	}
	if !alreadyQuoted && quote {
		return `"` + out + `"`
	}
	return out
}

// Equal reports whether two names are the same in the way Java's X500Principal.equals decides
// it (which PKCS#7 uses to find a signer's certificate): identical encodings, or the same RDNs
// whose string values match ignoring case and redundant white space.
func (n Name) Equal(o Name) bool {
	if string(n.Raw) == string(o.Raw) {
		return true
	}
	if len(n.RDNs) != len(o.RDNs) {
		return false
	}
	for i := range n.RDNs {
		a, b := n.RDNs[i].canonical(), o.RDNs[i].canonical()
		if len(a) != len(b) {
			return false
		}
		for j := range a {
			if a[j] != b[j] {
				return false
			}
		}
	}
	return true
}

func (r RDN) canonical() []string {
	out := make([]string, len(r))
	for i, a := range r {
		if s, ok := a.Text(); ok {
			s = strings.ToLower(strings.ToUpper(strings.Join(strings.Fields(s), " ")))
			out[i] = a.OID + "=" + s
		} else {
			out[i] = a.OID + "=#" + string(a.derEncoding())
		}
	}
	sort.Strings(out)
	return out
}
