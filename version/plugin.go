package version

import sdkversion "github.com/hashicorp/packer-plugin-sdk/version"

// PluginVersion is the version Packer sees from `packer plugins installed`
// and the plugin's describe output.
var PluginVersion = sdkversion.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)
