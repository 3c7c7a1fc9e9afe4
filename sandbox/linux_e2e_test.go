//go:build linux

package sandbox_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

const (
	linuxRegion    = "us-east-1"
	linuxTimeScale = 0.05
)

// linuxEnv is a linux-runtime sandbox and an EC2 client for it.
type linuxEnv struct {
	t   *testing.T
	sb  *sandbox.Sandbox
	ec2 *ec2.Client
	ctx context.Context
}

// testLog passes the sandbox's log to the test's.
type testLog struct {
	mu sync.Mutex
	t  testing.TB
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// startLinux starts a linux-runtime sandbox; when the test ends, after
// the sandbox closed, nothing of the runtime may remain: no mount under
// its state directory, no process in a namespace of its instances.
func startLinux(t *testing.T) *linuxEnv {
	t.Helper()
	testenv.RequireE2E(t)
	testenv.RequireRoot(t)
	var leaks *sandboxtest.RuntimeLeaks
	var stateDir string
	t.Cleanup(func() { leaks.Check(t, stateDir) })
	sb := sandboxtest.StartWith(t, sandbox.Options{Runtime: "linux", TimeScale: linuxTimeScale, Log: &testLog{t: t}})
	stateDir = sb.StateDir()
	leaks = sandboxtest.WatchRuntime()
	cfg := sandboxtest.Config(t, sb, linuxRegion)
	return &linuxEnv{t: t, sb: sb, ec2: ec2.NewFromConfig(cfg), ctx: context.Background()}
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

func (e *linuxEnv) instance(id string) ec2types.Instance {
	e.t.Helper()
	out, err := e.ec2.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		e.t.Fatalf("DescribeInstances: %v", err)
	}
	if len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		e.t.Fatalf("DescribeInstances(%s): no instance", id)
	}
	return out.Reservations[0].Instances[0]
}

func (e *linuxEnv) waitState(id string, want ec2types.InstanceStateName) ec2types.Instance {
	e.t.Helper()
	var inst ec2types.Instance
	waitFor(e.t, id+" "+string(want), 2*time.Minute, func() (bool, string) {
		inst = e.instance(id)
		reason := ""
		if inst.StateReason != nil {
			reason = aws.ToString(inst.StateReason.Message)
		}
		return inst.State.Name == want, string(inst.State.Name) + " " + reason
	})
	return inst
}

func (e *linuxEnv) debianImage() string {
	e.t.Helper()
	out, err := e.ec2.DescribeImages(e.ctx, &ec2.DescribeImagesInput{
		Owners:  []string{sandbox.OwnerDebian},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}},
	})
	if err != nil || len(out.Images) == 0 {
		e.t.Fatalf("DescribeImages: %v (%d images)", err, len(out.Images))
	}
	sort.Slice(out.Images, func(i, j int) bool {
		return aws.ToString(out.Images[i].CreationDate) > aws.ToString(out.Images[j].CreationDate)
	})
	return aws.ToString(out.Images[0].ImageId)
}

func (e *linuxEnv) run(image, key, userData string) string {
	e.t.Helper()
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(image), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro,
	}
	if key != "" {
		in.KeyName = aws.String(key)
	}
	if userData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(userData)))
	}
	out, err := e.ec2.RunInstances(e.ctx, in)
	if err != nil {
		e.t.Fatalf("RunInstances: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func (e *linuxEnv) console(id string) string {
	e.t.Helper()
	out, err := e.ec2.GetConsoleOutput(e.ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		e.t.Fatalf("GetConsoleOutput: %v", err)
	}
	data, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	return string(data)
}

func (e *linuxEnv) waitImage(id string) ec2types.Image {
	e.t.Helper()
	var im ec2types.Image
	waitFor(e.t, "image "+id, 2*time.Minute, func() (bool, string) {
		out, err := e.ec2.DescribeImages(e.ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil || len(out.Images) == 0 {
			return false, fmt.Sprint(err)
		}
		im = out.Images[0]
		if im.State == ec2types.ImageStateFailed {
			e.t.Fatalf("image %s failed: %v", id, aws.ToString(im.StateReason.Message))
		}
		return im.State == ec2types.ImageStateAvailable, string(im.State)
	})
	return im
}

// bake runs an instance of image with userData, waits for the user data
// to finish, stops it and makes an image of it.
func (e *linuxEnv) bake(image, name, userData string) string {
	e.t.Helper()
	id := e.run(image, "", userData)
	e.waitState(id, ec2types.InstanceStateNameRunning)
	waitFor(e.t, "user data of "+id, time.Minute, func() (bool, string) {
		c := e.console(id)
		return strings.Contains(c, "user data script finished"), c
	})
	e.stop(id)
	ami := e.createImage(id, name)
	e.terminate(id)
	return ami
}

func (e *linuxEnv) stop(id string) {
	e.t.Helper()
	if _, err := e.ec2.StopInstances(e.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		e.t.Fatalf("StopInstances: %v", err)
	}
	e.waitState(id, ec2types.InstanceStateNameStopped)
}

func (e *linuxEnv) createImage(id, name string) string {
	e.t.Helper()
	out, err := e.ec2.CreateImage(e.ctx, &ec2.CreateImageInput{InstanceId: aws.String(id), Name: aws.String(name)})
	if err != nil {
		e.t.Fatalf("CreateImage: %v", err)
	}
	ami := aws.ToString(out.ImageId)
	e.waitImage(ami)
	return ami
}

func (e *linuxEnv) terminate(ids ...string) {
	e.t.Helper()
	if _, err := e.ec2.TerminateInstances(e.ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		e.t.Fatalf("TerminateInstances: %v", err)
	}
	for _, id := range ids {
		e.waitState(id, ec2types.InstanceStateNameTerminated)
	}
}

func (e *linuxEnv) deregister(ami string) {
	e.t.Helper()
	if _, err := e.ec2.DeregisterImage(e.ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami), DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil {
		e.t.Fatalf("DeregisterImage: %v", err)
	}
}

// sshRun runs cmd on the instance at ip as admin.
func sshRun(t *testing.T, ip string, signer ssh.Signer, cmd string) string {
	t.Helper()
	return sshRunInput(t, ip, signer, cmd, nil)
}

// TestLinuxInstanceImageRoundTrip: an instance from the Debian image with
// a key pair, SSH, sudo, files; stop, image, a second instance from the
// image finds the files; the image's files through both hooks; stop and
// start keep the disk; other distributions fail clearly.
func TestLinuxInstanceImageRoundTrip(t *testing.T) {
	e := startLinux(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	if _, err := e.ec2.ImportKeyPair(e.ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("e2e"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(sshPub)}); err != nil {
		t.Fatalf("ImportKeyPair: %v", err)
	}
	debian := e.debianImage()

	start := time.Now()
	id := e.run(debian, "e2e", "#!/bin/sh\necho hello from user data as $(id -un)\n")
	inst := e.waitState(id, ec2types.InstanceStateNameRunning)
	ip := aws.ToString(inst.PrivateIpAddress)
	t.Logf("instance %s running at %s after %s", id, ip, time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(ip, "127.31.") {
		t.Errorf("private IP %s is not in the linux runtime's 127.31.0.0/16", ip)
	}
	if out := sshRun(t, ip, signer, "sudo id -u && hostname"); !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "ip-"+strings.ReplaceAll(ip, ".", "-")) {
		t.Errorf("sudo id -u && hostname: %q", out)
	}
	sshRun(t, ip, signer, "echo baked-in | sudo tee /etc/phoenix-e2e >/dev/null && echo mine > ~/note")
	waitFor(t, "user data output on the console", 30*time.Second, func() (bool, string) {
		c := e.console(id)
		return strings.Contains(c, "hello from user data as root"), c
	})

	e.stop(id)
	ami := e.createImage(id, "phoenix-e2e-1")
	im := e.waitImage(ami)
	snapID := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
	snaps, err := e.ec2.DescribeSnapshots(e.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapID}})
	if err != nil || len(snaps.Snapshots) != 1 {
		t.Fatalf("DescribeSnapshots: %v", err)
	}
	size := aws.ToInt64(snaps.Snapshots[0].FullSnapshotSizeInBytes)
	t.Logf("image %s: layer of %d bytes", ami, size)
	if size <= 0 {
		t.Errorf("FullSnapshotSizeInBytes = %d, want the layer's real size", size)
	}

	id2 := e.run(ami, "e2e", "")
	ip2 := aws.ToString(e.waitState(id2, ec2types.InstanceStateNameRunning).PrivateIpAddress)
	if ip2 == ip {
		t.Errorf("second instance got the first one's address %s", ip)
	}
	if out := sshRun(t, ip2, signer, "cat /etc/phoenix-e2e ~/note"); out != "baked-in\nmine\n" {
		t.Errorf("files on the instance from the image: %q", out)
	}

	dir, cleanup, err := e.sb.OpenImage(linuxRegion, ami)
	if err != nil {
		t.Fatalf("OpenImage: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "etc/phoenix-e2e")); err != nil || string(data) != "baked-in\n" {
		t.Errorf("OpenImage: /etc/phoenix-e2e = %q, %v", data, err)
	}
	if err := cleanup(); err != nil {
		t.Errorf("OpenImage cleanup: %v", err)
	}
	resp, err := http.Get(e.sb.URL() + "/_sandbox/images/" + ami + "/files?region=" + linuxRegion + "&path=/etc/phoenix-e2e")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "baked-in\n" {
		t.Errorf("files hook: %d %q", resp.StatusCode, body)
	}

	// Start keeps the disk; the user data ran once only.
	if _, err := e.ec2.StartInstances(e.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatalf("StartInstances: %v", err)
	}
	e.waitState(id, ec2types.InstanceStateNameRunning)
	if out := sshRun(t, ip, signer, "cat ~/note"); out != "mine\n" {
		t.Errorf("after stop and start: ~/note = %q", out)
	}
	if n := strings.Count(e.console(id), "hello from user data"); n != 1 {
		t.Errorf("user data ran %d times, want once", n)
	}

	// Other distributions have no file tree here: the launch fails clearly.
	out, err := e.ec2.DescribeImages(e.ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerCanonical}})
	if err != nil || len(out.Images) == 0 {
		t.Fatalf("DescribeImages(Canonical): %v", err)
	}
	ubuntu := e.run(aws.ToString(out.Images[0].ImageId), "", "")
	gone := e.waitState(ubuntu, ec2types.InstanceStateNameTerminated)
	if msg := aws.ToString(gone.StateReason.Message); !strings.Contains(msg, "only Debian 12") {
		t.Errorf("Ubuntu launch: state reason %q does not say why", msg)
	}

	e.terminate(id, id2)
	e.deregister(ami)
	if _, err := e.ec2.DeleteKeyPair(e.ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("e2e")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the image's layer to be removed", 10*time.Second, func() (bool, string) {
		ents, _ := os.ReadDir(filepath.Join(e.sb.StateDir(), "layers"))
		return len(ents) == 0, fmt.Sprint(len(ents), " layers")
	})
	sandboxtest.RequireEmptyInventory(t, e.sb)
}
