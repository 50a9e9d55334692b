package evidence

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // base64 (standard encoding) of the payload bytes
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature of an Envelope.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64 of the signature over PAE(payloadType, payload)
}

// ErrBadSignature says no signature of the envelope verifies with the given key.
var ErrBadSignature = errors.New("signature does not verify")

// PAE returns the DSSE pre-authentication encoding of payloadType and payload.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len(payloadType)+len(payload)+32)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = append(b, strconv.AppendInt(nil, int64(len(payload)), 10)...)
	b = append(b, ' ')
	return append(b, payload...)
}

// SignEnvelope signs payload with key and returns the envelope.
func SignEnvelope(payloadType string, payload []byte, key ed25519.PrivateKey) (*Envelope, error) {
	id, err := KeyID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(key, PAE(payloadType, payload))
	return &Envelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []Signature{{KeyID: id, Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, nil
}

// DecodeEnvelope parses an envelope, rejecting unknown fields, trailing data and a payload or
// signature that is not base64.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	var env Envelope
	if err := strictUnmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("reading DSSE envelope: %w", err)
	}
	if env.PayloadType == "" {
		return nil, errors.New("reading DSSE envelope: no payloadType")
	}
	if _, err := base64.StdEncoding.DecodeString(env.Payload); err != nil {
		return nil, fmt.Errorf("reading DSSE envelope: payload is not base64: %w", err)
	}
	if len(env.Signatures) == 0 {
		return nil, errors.New("reading DSSE envelope: no signatures")
	}
	return &env, nil
}

// PayloadBytes returns the decoded payload.
func (e *Envelope) PayloadBytes() ([]byte, error) {
	return base64.StdEncoding.DecodeString(e.Payload)
}

// Verify checks that a signature of e verifies with pub; it returns the key id of the signature
// that did. Signatures by other keys are ignored, not errors (an envelope may carry several).
func (e *Envelope) Verify(pub ed25519.PublicKey) (string, error) {
	payload, err := e.PayloadBytes()
	if err != nil {
		return "", fmt.Errorf("payload is not base64: %w", err)
	}
	id, err := KeyID(pub)
	if err != nil {
		return "", err
	}
	msg := PAE(e.PayloadType, payload)
	for _, s := range e.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil || len(sig) != ed25519.SignatureSize {
			continue
		}
		if ed25519.Verify(pub, msg, sig) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w with key %s (the envelope is signed by %s)", ErrBadSignature, id, e.keyIDs())
}

func (e *Envelope) keyIDs() string {
	s := ""
	for i, sig := range e.Signatures {
		if i > 0 {
			s += ", "
		}
		if sig.KeyID == "" {
			s += "an unnamed key"
		} else {
			s += sig.KeyID
		}
	}
	return s
}

// strictUnmarshal decodes exactly one JSON value with no unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytesReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}
