// Package version holds the version of the plugin and the phoenix CLI.
// Release builds set these with -ldflags "-X ...".
package version

var (
	// Version is the semantic version, without a leading v.
	Version = "0.1.0"
	// VersionPrerelease is "dev" for local builds and "" for releases.
	VersionPrerelease = "dev"
	// VersionMetadata is build metadata such as a commit, or "".
	VersionMetadata = ""
)

// String returns the full version: 0.1.0-dev+abc123.
func String() string {
	s := Version
	if VersionPrerelease != "" {
		s += "-" + VersionPrerelease
	}
	if VersionMetadata != "" {
		s += "+" + VersionMetadata
	}
	return s
}
