package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/benchreport"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// BenchmarkDescribeInstances measures DescribeInstances calls per second
// (10 instances in the answer) with 8 concurrent clients, against a
// baseline: a plain loopback HTTP server that returns the same response
// bytes without doing any work. It does so twice: through the AWS SDK
// (what a test sees, client cost included) and with plain HTTP requests
// (the server's own capacity, which the target of at least 2,000 calls per
// second is about).
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
	// The server's own throughput: plain HTTP requests as the SDK sends
	// them (the sandbox reads but does not verify signatures), so the
	// SDK's client-side cost does not hide the server's.
	body := "Action=DescribeInstances&Version=2016-11-15"
	auth := "AWS4-HMAC-SHA256 Credential=AKIASANDBOX/20261125/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	rawRate := func(url string) float64 {
		var n atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n.Add(1) <= perIter {
					req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", auth)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		return perIter / time.Since(start).Seconds()
	}
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
	var sbRate, baseRate, rawSB, rawBase float64
	for i := 0; i < b.N; i++ {
		sbRate += rate(c)
		baseRate += rate(baseClient)
		rawSB += rawRate(sb.URL() + "/")
		rawBase += rawRate(base.URL + "/")
	}
	n := float64(b.N)
	b.ReportMetric(sbRate/n, "sdk-sandbox-calls/s")
	b.ReportMetric(baseRate/n, "sdk-baseline-calls/s")
	b.ReportMetric(sbRate/baseRate, "sdk-ratio")
	b.ReportMetric(rawSB/n, "http-sandbox-calls/s")
	b.ReportMetric(rawBase/n, "http-baseline-calls/s")
	b.ReportMetric(rawSB/rawBase, "http-ratio")
	note := fmt.Sprintf("%d concurrent clients, 10 instances in the answer; baseline: a loopback server replaying the answer", workers)
	if err := benchreport.Add(
		benchreport.NewRow("sandbox DescribeInstances throughput, AWS SDK (vs canned answer)", sbRate/n, baseRate/n, "calls/s", note),
		benchreport.NewRow("sandbox DescribeInstances throughput, plain HTTP (vs canned answer)", rawSB/n, rawBase/n, "calls/s", note),
	); err != nil {
		b.Fatal(err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
