//go:build linux

package sandbox_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestLinuxInstanceMetadata: inside an instance, 169.254.169.254 answers
// the IMDSv2 token flow with the instance's own ID, region, address and
// user data; with HttpTokens required a request without a token is
// refused; tags appear only once InstanceMetadataTags is enabled; the AWS
// SDK inside the instance finds its region there; two
// instances serve 0.0.0.0:8080 at once, each at its own private IP.
func TestLinuxInstanceMetadata(t *testing.T) {
	e := startLinux(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	if _, err := e.ec2.ImportKeyPair(e.ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("imds"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(sshPub)}); err != nil {
		t.Fatalf("ImportKeyPair: %v", err)
	}
	debian := e.debianImage()
	userData := "#!/bin/sh\nmkdir -p /srv/www\nhostname > /srv/www/index.html\nexec busybox httpd -f -p 0.0.0.0:8080 -h /srv/www\n"
	ids := []string{e.run(debian, "imds", userData), e.run(debian, "imds", userData)}
	var ips []string
	for _, id := range ids {
		ips = append(ips, aws.ToString(e.waitState(id, ec2types.InstanceStateNameRunning).PrivateIpAddress))
	}
	id, ip := ids[0], ips[0]

	const token = `TOKEN=$(curl -sS -f -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)`
	get := func(path string) string {
		return strings.TrimSpace(sshRun(t, ip, signer, token+` && curl -sS -f -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254`+path))
	}
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":      id,
		"/latest/meta-data/placement/region": linuxRegion,
		"/latest/meta-data/local-ipv4":       ip,
		"/latest/user-data":                  strings.TrimSpace(userData),
	} {
		if got := get(path); got != want {
			t.Errorf("IMDS %s = %q, want %q", path, got, want)
		}
	}
	// The launch default is HttpTokens optional: IMDSv1 answers.
	v1 := `curl -sS -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/instance-id`
	if got := sshRun(t, ip, signer, v1); got != "200" {
		t.Errorf("IMDSv1 with HttpTokens optional: HTTP %s", got)
	}
	if got := sshRun(t, ip, signer, `curl -sS -o /dev/null -w '%{http_code}' -X PUT http://169.254.169.254/latest/api/token`); got != "400" {
		t.Errorf("token PUT without a TTL: HTTP %s, want 400", got)
	}
	if got := sshRun(t, ip, signer, `curl -sS -o /dev/null -w '%{http_code}' -H 'X-aws-ec2-metadata-token: forged' http://169.254.169.254/latest/meta-data/instance-id`); got != "401" {
		t.Errorf("read with an unknown token: HTTP %s, want 401", got)
	}
	if got := sshRun(t, ip, signer, `curl -sS -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/tags/instance`); got != "404" {
		t.Errorf("tags with InstanceMetadataTags disabled: HTTP %s, want 404", got)
	}

	if _, err := e.ec2.CreateTags(e.ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}}}); err != nil {
		t.Fatalf("CreateTags: %v", err)
	}
	if _, err := e.ec2.ModifyInstanceMetadataOptions(e.ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpTokens: ec2types.HttpTokensStateRequired, InstanceMetadataTags: ec2types.InstanceMetadataTagsStateEnabled,
	}); err != nil {
		t.Fatalf("ModifyInstanceMetadataOptions: %v", err)
	}
	if got := sshRun(t, ip, signer, v1); got != "401" {
		t.Errorf("IMDSv1 with HttpTokens required: HTTP %s, want 401", got)
	}
	if got := get("/latest/meta-data/tags/instance/Name"); got != "web-1" {
		t.Errorf("tag Name through IMDS: %q", got)
	}

	// The AWS SDK for Go v2 inside the instance, with no region set, finds
	// it in the metadata service (IMDSv2, as HttpTokens now requires).
	bin := filepath.Join(t.TempDir(), "imdsregion")
	build := exec.Command("go", "build", "-o", bin, "./testdata/imdsregion")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/imdsregion: %v\n%s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(sshRunInput(t, ip, signer, "cat > /tmp/imdsregion && chmod +x /tmp/imdsregion && env -u AWS_REGION -u AWS_DEFAULT_REGION /tmp/imdsregion", prog)); got != linuxRegion {
		t.Errorf("the AWS SDK inside the instance found region %q, want %q", got, linuxRegion)
	}

	// Each instance's own 0.0.0.0:8080, at its own address.
	for i, ip := range ips {
		want := "ip-" + strings.ReplaceAll(ip, ".", "-")
		if got := strings.TrimSpace(sshRun(t, ips[1-i], signer, "curl -sS -m 5 http://"+ip+":8080/")); got != want {
			t.Errorf("GET http://%s:8080/ from the other instance: %q, want %q", ip, got, want)
		}
	}

	e.terminate(ids...)
	if _, err := e.ec2.DeleteKeyPair(e.ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("imds")}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, e.sb)
}

// sshRunInput runs cmd on the instance at ip as admin with input on its
// standard input.
func sshRunInput(t *testing.T, ip string, signer ssh.Signer, cmd string, input []byte) string {
	t.Helper()
	cfg := &ssh.ClientConfig{
		User: "admin", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(ip, "22"), cfg)
	if err != nil {
		t.Fatalf("ssh admin@%s: %v", ip, err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("ssh session: %v", err)
	}
	defer s.Close()
	if input != nil {
		s.Stdin = bytes.NewReader(input)
	}
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("ssh %s: %q: %v\n%s", ip, cmd, err, out)
	}
	return string(out)
}
