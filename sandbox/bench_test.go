package sandbox_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// BenchmarkDescribeInstances measures DescribeInstances calls per second
// through the AWS SDK with 8 concurrent clients, against a baseline: a
// plain loopback HTTP server that returns the same response bytes without
// doing any work. The ratio is the sandbox's share of the cost; the target
// is at least 2,000 calls per second.
func BenchmarkDescribeInstances(b *testing.B) {
	sb := sandboxtest.Start(b)
	ctx := context.Background()
	cfg := sandboxtest.Config(b, sb, "us-east-1")
	c := ec2.NewFromConfig(cfg)
	img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}, Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	if err != nil || len(img.Images) == 0 {
		b.Fatalf("finding an image: %v", err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: img.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(10), MaxCount: aws.Int32(10)})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, in := range run.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	b.Cleanup(func() { c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids}) })

	// The baseline serves the sandbox's own answer, captured once.
	var canned []byte
	capture := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && canned == nil {
			canned, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(canned))
		}
		return resp, err
	})}
	if _, err := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.HTTPClient = capture }).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		b.Fatal(err)
	}
	base := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.Write(canned)
	}))
	defer base.Close()
	baseClient := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(base.URL) })

	const workers, perIter = 8, 400
	rate := func(client *ec2.Client) float64 {
		var n atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n.Add(1) <= perIter {
					if _, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return perIter / time.Since(start).Seconds()
	}
	b.ResetTimer()
	var sbRate, baseRate float64
	for i := 0; i < b.N; i++ {
		sbRate += rate(c)
		baseRate += rate(baseClient)
	}
	b.ReportMetric(sbRate/float64(b.N), "sandbox-calls/s")
	b.ReportMetric(baseRate/float64(b.N), "baseline-calls/s")
	b.ReportMetric(sbRate/baseRate, "ratio")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
