package sandbox

// VolumeInfo is what tests outside the package may read of a volume while
// DescribeVolumes lives elsewhere.
type VolumeInfo struct {
	ID, Device, KmsKeyID, Type string
	Size                       int
	Encrypted                  bool
}

// InstanceVolumes returns the volumes attached to an instance.
func InstanceVolumes(sb *Sandbox, region, instanceID string) []VolumeInfo {
	sb.world.mu.Lock()
	defer sb.world.mu.Unlock()
	r := sb.world.regions[regionKey{AccountID, region}]
	if r == nil {
		return nil
	}
	var out []VolumeInfo
	for _, v := range r.Volumes {
		if v.InstanceID == instanceID {
			out = append(out, VolumeInfo{ID: v.ID, Device: v.Device, KmsKeyID: v.KmsKeyID, Type: v.Type, Size: v.Size, Encrypted: v.Encrypted})
		}
	}
	return out
}

// PublicImageID returns the id of a seeded public image whose name starts
// with prefix, creating the region first when needed.
func PublicImageID(sb *Sandbox, region, prefix string) string {
	sb.world.mu.Lock()
	defer sb.world.mu.Unlock()
	r, err := sb.world.region(region)
	if err != nil {
		return ""
	}
	best := ""
	for _, im := range r.Images {
		if im.Builtin && len(im.Name) >= len(prefix) && im.Name[:len(prefix)] == prefix && (best == "" || im.ID < best) {
			best = im.ID
		}
	}
	return best
}
