package sandbox

import (
	"fmt"
	"net/netip"
	"time"
)

// Public image owners, as on AWS.
const (
	OwnerDebian       = "136693071363"
	OwnerCanonical    = "099720109477"
	OwnerAmazon       = "137112412989"
	debianImageName   = "debian-12-amd64-%s-%d"
	defaultVPCCIDR    = "172.31.0.0/16"
	defaultSGName     = "default"
	ebsDefaultAlias   = "alias/aws/ebs"
	publicSnapshotGiB = 8
	// RootfsDebian12 marks the images whose file tree is the linux
	// runtime's Debian 12 base root file system (plus their layers).
	RootfsDebian12 = "debian-12"
)

// publicImage describes one public image every region starts with.
type publicImage struct {
	name, owner, alias, description, arch, platformDetails, root string
	rootfs                                                       string
	created                                                      time.Time
}

func publicImages() []publicImage {
	day := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC) }
	var out []publicImage
	// Debian's own release cadence: a few dated builds, newest last.
	for i, d := range []time.Time{day(2026, 7, 14), day(2026, 9, 1), day(2026, 10, 20)} {
		stamp := d.Format("20060102")
		out = append(out, publicImage{
			name: fmt.Sprintf(debianImageName, stamp, 1800+i*7), owner: OwnerDebian,
			description: "Debian 12 (" + stamp + "-" + fmt.Sprint(1800+i*7) + ")",
			arch:        "x86_64", platformDetails: "Linux/UNIX", root: "/dev/xvda", created: d, rootfs: RootfsDebian12,
		})
		out = append(out, publicImage{
			name: fmt.Sprintf("debian-12-arm64-%s-%d", stamp, 1800+i*7), owner: OwnerDebian,
			description: "Debian 12 (" + stamp + "-" + fmt.Sprint(1800+i*7) + ")",
			arch:        "arm64", platformDetails: "Linux/UNIX", root: "/dev/xvda", created: d,
		})
	}
	for _, d := range []time.Time{day(2026, 8, 5), day(2026, 10, 30)} {
		stamp := d.Format("20060102")
		out = append(out,
			publicImage{name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-" + stamp, owner: OwnerCanonical, alias: "",
				description: "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image build on " + d.Format("2006-01-02"),
				arch:        "x86_64", platformDetails: "Linux/UNIX", root: "/dev/sda1", created: d},
			publicImage{name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-" + stamp, owner: OwnerCanonical,
				description: "Canonical, Ubuntu, 24.04, amd64 noble image",
				arch:        "x86_64", platformDetails: "Linux/UNIX", root: "/dev/sda1", created: d},
			publicImage{name: "al2023-ami-2023.9." + stamp + ".0-kernel-6.1-x86_64", owner: OwnerAmazon, alias: "amazon",
				description: "Amazon Linux 2023 AMI 2023.9." + stamp + ".0 x86_64 HVM kernel-6.1",
				arch:        "x86_64", platformDetails: "Linux/UNIX", root: "/dev/xvda", created: d},
			publicImage{name: "al2023-ami-minimal-2023.9." + stamp + ".0-kernel-6.1-x86_64", owner: OwnerAmazon, alias: "amazon",
				description: "Amazon Linux 2023 AMI 2023.9." + stamp + ".0 x86_64 Minimal HVM kernel-6.1",
				arch:        "x86_64", platformDetails: "Linux/UNIX", root: "/dev/xvda", created: d},
		)
	}
	return out
}

// seedRegion gives a region what a fresh account has there.
func seedRegion(r *Region) {
	// The fresh account's resources are as old as the account: no
	// eventual-consistency fault may hide them from a first Describe.
	now := r.w.now().Add(-30 * 24 * time.Hour)
	cidr := r.w.runtime.DefaultVPCCIDR()
	vpc := &VPC{ID: newID("vpc"), CIDR: cidr, IsDefault: true, Tags: Tags{}, Created: now}
	r.VPCs[vpc.ID] = vpc
	base := netip.MustParsePrefix(cidr).Addr().As4()
	for i, az := range r.azs() {
		sn := &Subnet{
			ID: newID("subnet"), VpcID: vpc.ID, AZ: az, AZID: fmt.Sprintf("%s-az%d", regionShort(r.Name), i+1),
			CIDR: fmt.Sprintf("%d.%d.%d.0/20", base[0], base[1], i*16), IsDefault: true, Tags: Tags{}, Created: now,
		}
		r.Subnets[sn.ID] = sn
	}
	sg := &SecurityGroup{
		ID: newID("sg"), Name: defaultSGName, Description: "default VPC security group", VpcID: vpc.ID,
		IsDefault: true, Tags: Tags{}, Created: now,
		Egress: []IPPermission{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}},
	}
	sg.Ingress = []IPPermission{{Protocol: "-1", GroupIDs: []string{sg.ID}}}
	r.SecurityGroups[sg.ID] = sg

	key := &KMSKey{
		ID: newUUID(), Description: "Default key that protects my EBS volumes when no other key is defined",
		Enabled: true, State: "Enabled", Manager: "AWS", Spec: "SYMMETRIC_DEFAULT", Usage: "ENCRYPT_DECRYPT",
		Created: now, Builtin: true, Tags: Tags{}, Policy: ebsManagedKeyPolicy(r.Account, r.Name),
	}
	key.ARN = r.arn("kms", "key/"+key.ID)
	r.KMSKeys[key.ID] = key
	r.KMSAliases[ebsDefaultAlias] = &KMSAlias{Name: ebsDefaultAlias, ARN: r.arn("kms", ebsDefaultAlias), TargetID: key.ID, Builtin: true, Created: now}
	r.ebsDefaultKey = key.ID

	for _, p := range publicImages() {
		snap := &Snapshot{
			ID: publicID("snap", r.Name, p.name), VolumeSize: publicSnapshotGiB, State: "completed", Progress: 100,
			OwnerID: p.owner, StartTime: p.created, Tags: Tags{}, Builtin: true, Created: p.created,
			Description: "Public snapshot of " + p.name,
		}
		r.Snapshots[snap.ID] = snap
		img := &Image{
			ID: publicID("ami", r.Name, p.name), Name: p.name, Description: p.description, OwnerID: p.owner, OwnerAlias: p.alias,
			State: "available", CreationDate: p.created, Architecture: p.arch, PlatformDetails: p.platformDetails,
			RootDeviceName: p.root, RootDeviceType: "ebs", VirtualizationType: "hvm", BootMode: "uefi-preferred",
			EnaSupport: true,
			BlockDevices: []ImageBlockDevice{{
				DeviceName: p.root, SnapshotID: snap.ID, VolumeSize: publicSnapshotGiB, VolumeType: "gp3",
				DeleteOnTermination: true,
			}},
			Permissions: LaunchPermissions{Groups: []string{"all"}},
			Tags:        Tags{}, Builtin: true, Created: p.created, Rootfs: p.rootfs,
		}
		r.Images[img.ID] = img
	}
}

// regionShort is the zone-id prefix AWS uses: us-east-1 -> use1.
func regionShort(name string) string {
	out := []byte{}
	part := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			part++
		case c >= '0' && c <= '9':
			out = append(out, c)
		case i == 0 || name[i-1] == '-':
			out = append(out, c)
			if part == 0 && i+1 < len(name) {
				out = append(out, name[i+1])
			}
		}
	}
	return string(out)
}
