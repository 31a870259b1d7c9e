package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

type stoppedClock struct{ t time.Time }

func (c stoppedClock) Now() time.Time { return c.t }

func Example() {
	// Keys come from configuration; GenerateSecret(32) makes one.
	keys, err := auth.NewKeyring("2026-11", map[string][]byte{
		"2026-11": []byte("0123456789abcdef0123456789abcdef"),
	})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	signer := &auth.Signer{Keys: keys, Issuer: "kefu", Clock: stoppedClock{now}}
	token, err := signer.Sign(auth.Claims{
		Audience:  auth.AudienceStaff,
		Subject:   "agent-7",
		Tenant:    "shop-1",
		Role:      string(engine.StaffAgent),
		ExpiresAt: now.Add(8 * time.Hour),
		Session:   "signin-1",
	})
	if err != nil {
		panic(err)
	}

	verifier := &auth.Verifier{Keys: keys, Issuer: "kefu", Clock: stoppedClock{now.Add(time.Hour)}, Leeway: 30 * time.Second}
	c, err := verifier.Verify(token, auth.AudienceStaff)
	fmt.Println(c.Tenant, c.Subject, c.Role, err)

	_, err = verifier.Verify(token, auth.AudienceUser)
	fmt.Println(errors.Is(err, auth.ErrInvalidToken))

	later := &auth.Verifier{Keys: keys, Issuer: "kefu", Clock: stoppedClock{now.Add(9 * time.Hour)}}
	_, err = later.Verify(token, auth.AudienceStaff)
	fmt.Println(errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrInvalidToken))
	// Output:
	// shop-1 agent-7 agent <nil>
	// true
	// true true
}
