package sealed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

const (
	// prefix starts every sealed value; the 1 is the format's version.
	prefix    = "enc1:"
	nonceSize = 12 // GCM's standard nonce
	tagSize   = 16 // GCM's tag
)

// aad is the additional authenticated data of a sealed value or wrapped
// key: a label and then each part, length-prefixed so that no two lists of
// parts encode alike.
func aad(label string, parts ...string) []byte {
	n := len("kefu/sealed/") + len(label)
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, "kefu/sealed/"...)
	b = append(b, label...)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// seal encrypts plaintext with the tenant's newest data key, binding it to
// ad.
func (k *Keys) seal(ctx context.Context, tenant string, plaintext, ad []byte) (string, error) {
	version, aead, err := k.sealer(ctx, tenant)
	if err != nil {
		return "", err
	}
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	rand.Read(buf) // never fails
	buf = aead.Seal(buf, buf, plaintext, ad)
	v := strconv.Itoa(version)
	var b strings.Builder
	b.Grow(len(prefix) + len(v) + 1 + base64.RawURLEncoding.EncodedLen(len(buf)))
	b.WriteString(prefix)
	b.WriteString(v)
	b.WriteByte(':')
	b.WriteString(base64.RawURLEncoding.EncodeToString(buf))
	return b.String(), nil
}

// open decrypts a value seal made for the tenant with the same ad.
func (k *Keys) open(ctx context.Context, tenant, sealed string, ad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return nil, fmt.Errorf("%w: no %q prefix", ErrTampered, prefix)
	}
	v, text, ok := strings.Cut(rest, ":")
	version, err := strconv.Atoi(v)
	if !ok || err != nil || version < 1 {
		return nil, fmt.Errorf("%w: bad key version", ErrTampered)
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: bad ciphertext encoding", ErrTampered)
	}
	aead, err := k.opener(ctx, tenant, version)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, raw[:nonceSize], raw[nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrTampered)
	}
	return plaintext, nil
}
