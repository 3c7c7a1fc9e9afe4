// Package inuse retries an EC2 call that AWS refuses while what it deletes
// is still in use: a snapshot just after its AMI was deregistered
// (InvalidSnapshot.InUse), a security group while its instance terminates
// (DependencyViolation). EC2 is eventually consistent and documents no
// bound for either, so the retry has a time limit, never an attempt count.
// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
package inuse

import (
	"context"
	"errors"
	"time"

	"github.com/aws/smithy-go"
)

// Limit is how long Retry keeps trying by default.
const Limit = 2 * time.Minute

// Codes are the error codes that mean "still in use, try again".
var Codes = map[string]bool{
	"InvalidSnapshot.InUse": true,
	"DependencyViolation":   true,
}

// Code returns err's AWS error code, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Retry calls f until it returns anything but an in-use error, limit has
// passed (the last error is returned), or ctx is done. The delay between
// calls grows from 200 ms to 5 s.
func Retry(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	delay := 200 * time.Millisecond
	for {
		err := f()
		if err == nil || !Codes[Code(err)] || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		if delay < 5*time.Second {
			delay *= 2
			if delay > 5*time.Second {
				delay = 5 * time.Second
			}
		}
	}
}
