// Command distcheck checks what `goreleaser release --snapshot` left in
// dist/ for one target: the plugin zip named the way `packer init` looks it
// up, holding the one binary Packer extracts, whose describe output reports
// the stamped version; the plugin's SHA256SUMS; and the phoenix CLI archive
// with its .sha256 file. It uses the standard library only, so that it needs
// neither unzip nor jq.
//
//	go run -C tools/goreleaser ./distcheck -dist "$PWD/dist" -api-version x5.0
package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

const (
	pluginName = "packer-plugin-phoenix"
	cliName    = "phoenix"
)

type options struct {
	dist       string
	apiVersion string
	goos       string
	goarch     string
}

func main() {
	var opts options
	flag.StringVar(&opts.dist, "dist", "dist", "goreleaser's output directory")
	flag.StringVar(&opts.apiVersion, "api-version", "", "the plugin API version in the archive names, e.g. x5.0 (required)")
	flag.StringVar(&opts.goos, "goos", runtime.GOOS, "the target's operating system")
	flag.StringVar(&opts.goarch, "goarch", runtime.GOARCH, "the target's architecture")
	flag.Parse()
	if opts.apiVersion == "" {
		fmt.Fprintln(os.Stderr, "distcheck: -api-version is required")
		os.Exit(2)
	}
	if err := run(opts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "distcheck: %v\n", err)
		os.Exit(1)
	}
}

func run(opts options, out io.Writer) error {
	version, err := readVersion(opts.dist)
	if err != nil {
		return err
	}
	exe := ""
	if opts.goos == "windows" {
		exe = ".exe"
	}
	// Binaries are run only when they were built for this machine.
	native := opts.goos == runtime.GOOS && opts.goarch == runtime.GOARCH

	tmp, err := os.MkdirTemp("", "distcheck-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The plugin: packer-plugin-phoenix_vX.Y.Z_x5.0_linux_amd64.zip holding
	// exactly packer-plugin-phoenix_vX.Y.Z_x5.0_linux_amd64.
	base := fmt.Sprintf("%s_v%s_%s_%s_%s", pluginName, version, opts.apiVersion, opts.goos, opts.goarch)
	pluginZip := base + ".zip"
	names, err := zipNames(filepath.Join(opts.dist, pluginZip))
	if err != nil {
		return fmt.Errorf("plugin archive: %w", err)
	}
	if want := []string{base + exe}; !slices.Equal(names, want) {
		return fmt.Errorf("plugin archive %s holds %q, want %q", pluginZip, names, want)
	}
	fmt.Fprintf(out, "distcheck: %s holds %s\n", pluginZip, base+exe)
	if native {
		bin := filepath.Join(tmp, base+exe)
		if err := extractZip(filepath.Join(opts.dist, pluginZip), base+exe, bin); err != nil {
			return err
		}
		if err := checkDescribe(bin, version, opts.apiVersion); err != nil {
			return err
		}
		fmt.Fprintf(out, "distcheck: describe reports version %s and API %s\n", version, opts.apiVersion)
	}

	// SHA256SUMS lists plugin zips only: Packer parses every line as one.
	sumsName := fmt.Sprintf("%s_v%s_SHA256SUMS", pluginName, version)
	sums, err := readSums(filepath.Join(opts.dist, sumsName))
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("%s_v%s_%s_", pluginName, version, opts.apiVersion)
	for name := range sums {
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".zip") {
			return fmt.Errorf("%s lists %s, which is not a plugin archive", sumsName, name)
		}
	}
	if err := checkSum(opts.dist, pluginZip, sums); err != nil {
		return fmt.Errorf("%s: %w", sumsName, err)
	}
	fmt.Fprintf(out, "distcheck: %s lists %d plugin archive(s), %s's checksum matches\n", sumsName, len(sums), pluginZip)

	// The CLI: phoenix_X.Y.Z_linux_amd64.tar.gz (zip on Windows) and its .sha256.
	cliBase := fmt.Sprintf("%s_%s_%s_%s", cliName, version, opts.goos, opts.goarch)
	var cliArchive string
	if opts.goos == "windows" {
		cliArchive = cliBase + ".zip"
		names, err = zipNames(filepath.Join(opts.dist, cliArchive))
	} else {
		cliArchive = cliBase + ".tar.gz"
		names, err = tarNames(filepath.Join(opts.dist, cliArchive))
	}
	if err != nil {
		return fmt.Errorf("CLI archive: %w", err)
	}
	if !slices.Contains(names, cliName+exe) {
		return fmt.Errorf("CLI archive %s holds %q, no %s", cliArchive, names, cliName+exe)
	}
	cliSums, err := readSums(filepath.Join(opts.dist, cliArchive+".sha256"))
	if err != nil {
		return err
	}
	if err := checkSum(opts.dist, cliArchive, cliSums); err != nil {
		return fmt.Errorf("%s.sha256: %w", cliArchive, err)
	}
	fmt.Fprintf(out, "distcheck: %s holds %s, its .sha256 matches\n", cliArchive, strings.Join(names, ", "))
	if native && opts.goos != "windows" {
		bin := filepath.Join(tmp, cliName)
		if err := extractTar(filepath.Join(opts.dist, cliArchive), cliName, bin); err != nil {
			return err
		}
		got, err := exec.Command(bin, "version").Output()
		if err != nil {
			return fmt.Errorf("running %s version: %w", cliName, err)
		}
		if want := "phoenix " + version + " "; !strings.HasPrefix(string(got), want) {
			return fmt.Errorf("%s version printed %q, want it to start with %q", cliName, got, want)
		}
		fmt.Fprintf(out, "distcheck: %s", got)
	}
	return nil
}

// readVersion returns the version goreleaser stamped, from dist/metadata.json.
func readVersion(dist string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		return "", err
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", fmt.Errorf("reading metadata.json: %w", err)
	}
	if meta.Version == "" {
		return "", errors.New("metadata.json has no version")
	}
	return meta.Version, nil
}

func checkDescribe(bin, version, apiVersion string) error {
	got, err := exec.Command(bin, "describe").Output()
	if err != nil {
		return fmt.Errorf("running %s describe: %w", filepath.Base(bin), err)
	}
	var d struct {
		Version      string   `json:"version"`
		APIVersion   string   `json:"api_version"`
		Builders     []string `json:"builders"`
		Provisioners []string `json:"provisioners"`
		Post         []string `json:"post_processors"`
	}
	if err := json.Unmarshal(got, &d); err != nil {
		return fmt.Errorf("reading the describe output %q: %w", got, err)
	}
	if d.Version != version || d.APIVersion != apiVersion {
		return fmt.Errorf("describe reports version %q and API %q, want %q and %q", d.Version, d.APIVersion, version, apiVersion)
	}
	if !slices.Contains(d.Builders, "ebs") || !slices.Contains(d.Provisioners, "harden") || !slices.Contains(d.Post, "deploy") {
		return fmt.Errorf("describe reports builders %q, provisioners %q and post-processors %q, want ebs, harden and deploy among them", d.Builders, d.Provisioners, d.Post)
	}
	return nil
}

// readSums reads a file in the format sha256sum writes: "<hex>  <name>".
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != sha256.Size*2 {
			return nil, fmt.Errorf("%s: malformed line %q", filepath.Base(path), sc.Text())
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s is empty", filepath.Base(path))
	}
	return sums, nil
}

func checkSum(dist, name string, sums map[string]string) error {
	want, ok := sums[name]
	if !ok {
		return fmt.Errorf("no line for %s", name)
	}
	b, err := os.ReadFile(filepath.Join(dist, name))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%s has checksum %s, the file lists %s", name, got, want)
	}
	return nil
}

func zipNames(path string) ([]string, error) {
	r, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var names []string
	for _, f := range r.File {
		names = append(names, f.Name)
	}
	return names, nil
}

func extractZip(path, name, dst string) error {
	r, err := zip.OpenReader(path)
	if err != nil {
		return err
	}
	defer r.Close()
	src, err := r.Open(name)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	defer src.Close()
	return writeExecutable(dst, src)
}

// walkTar calls fn for each regular file in a .tar.gz until fn returns true.
func walkTar(path string, fn func(h *tar.Header, r io.Reader) (bool, error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if done, err := fn(h, tr); done || err != nil {
			return err
		}
	}
}

func tarNames(path string) ([]string, error) {
	var names []string
	err := walkTar(path, func(h *tar.Header, _ io.Reader) (bool, error) {
		names = append(names, h.Name)
		return false, nil
	})
	return names, err
}

func extractTar(path, name, dst string) error {
	found := false
	err := walkTar(path, func(h *tar.Header, r io.Reader) (bool, error) {
		if h.Name != name {
			return false, nil
		}
		found = true
		return true, writeExecutable(dst, r)
	})
	if err == nil && !found {
		err = fmt.Errorf("%s holds no %s", filepath.Base(path), name)
	}
	return err
}

func writeExecutable(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
