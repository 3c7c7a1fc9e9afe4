//go:build linux

package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// BenchmarkBootTwoInstances measures RunInstances of two instances until
// both are running (in the linux runtime: sshd accepting), against two
// baselines measured in the same run: the sim runtime (the API and
// controllers alone) and linuxrt booting two instances directly (the
// runtime's own cost, without the sandbox). The time scale is tiny so that
// the sandbox's pending delay does not count. The target is under 3 s.
func BenchmarkBootTwoInstances(b *testing.B) {
	const scale = 0.001
	bootTwo := func(b *testing.B, runtime string) {
		sb := sandboxtest.StartWith(b, sandbox.Options{Runtime: runtime, TimeScale: scale})
		ctx := context.Background()
		c := ec2.NewFromConfig(sandboxtest.Config(b, sb, linuxRegion))
		img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}, Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
		if err != nil || len(img.Images) == 0 {
			b.Fatalf("DescribeImages: %v", err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: img.Images[0].ImageId, MinCount: aws.Int32(2), MaxCount: aws.Int32(2), InstanceType: ec2types.InstanceTypeT3Micro})
			if err != nil {
				b.Fatal(err)
			}
			ids := []string{aws.ToString(out.Instances[0].InstanceId), aws.ToString(out.Instances[1].InstanceId)}
			for {
				d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
				if err != nil {
					b.Fatal(err)
				}
				running := 0
				for _, r := range d.Reservations {
					for _, in := range r.Instances {
						switch in.State.Name {
						case ec2types.InstanceStateNameRunning:
							running++
						case ec2types.InstanceStateNameTerminated, ec2types.InstanceStateNameShuttingDown:
							b.Fatalf("%s: %s", aws.ToString(in.InstanceId), aws.ToString(in.StateReason.Message))
						}
					}
				}
				if running == 2 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/boot-of-two")
	}
	b.Run("sim", func(b *testing.B) { bootTwo(b, "sim") })
	// linuxrt-direct boots the base image as every instance boots, with
	// systemd as PID 1 (to sshd accepting); linuxrt-own-init boots it
	// with systemd hidden by an image layer, so that the runtime's own
	// init starts sshd alone, as every instance booted before systemd:
	// the cost of systemd is the ratio of the two.
	b.Run("linuxrt-direct", func(b *testing.B) { bootTwoDirect(b, false) })
	b.Run("linuxrt-own-init", func(b *testing.B) { bootTwoDirect(b, true) })
	b.Run("linux", func(b *testing.B) {
		testenv.RequireE2E(b)
		testenv.RequireRoot(b)
		bootTwo(b, "linux")
	})
}

func bootTwoDirect(b *testing.B, ownInit bool) {
	testenv.RequireE2E(b)
	testenv.RequireRoot(b)
	base, err := linuxrt.EnsureBaseRootfs(context.Background(), os.Getenv("PHOENIX_ROOTFS_CACHE"), nil)
	if err != nil {
		b.Fatal(err)
	}
	var layers []string
	if ownInit {
		// An overlayfs whiteout (a 0/0 character device) hides systemd.
		layer := b.TempDir()
		if err := os.MkdirAll(layer+"/usr/lib/systemd", 0o755); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Mknod(layer+"/usr/lib/systemd/systemd", syscall.S_IFCHR, 0); err != nil {
			b.Fatal(err)
		}
		layers = []string{layer}
	}
	state := b.TempDir()
	rt, err := linuxrt.New(linuxrt.Options{StateDir: state, BaseRootfs: base})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for j := 0; j < 2; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("bench-%d-%d", i, j)
				inst, err := rt.Boot(context.Background(), linuxrt.InstanceSpec{ID: id, IP: fmt.Sprintf("127.98.%d.%d", os.Getpid()%250+1, j+1), Layers: layers})
				if err == nil {
					err = inst.WaitSSH(context.Background())
				}
				if err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		for j := 0; j < 2; j++ {
			rt.Terminate(context.Background(), fmt.Sprintf("bench-%d-%d", i, j))
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/boot-of-two")
}
