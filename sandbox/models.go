package sandbox

import "time"

// The resource models of one region. Handlers and controllers read and
// change them under World.mu; nothing outside the package sees them.

// VPC is an EC2 VPC.
type VPC struct {
	ID        string
	CIDR      string
	IsDefault bool
	Tags      Tags
	Created   time.Time
}

// Subnet is an EC2 subnet; addresses are handed out from its CIDR.
type Subnet struct {
	ID        string
	VpcID     string
	AZ        string
	AZID      string
	CIDR      string
	IsDefault bool
	Tags      Tags
	Created   time.Time
	nextHost  int
}

// IPPermission is one security group rule set.
type IPPermission struct {
	Protocol string // "tcp", "udp", "icmp" or "-1"
	FromPort int
	ToPort   int
	CIDRs    []string
	GroupIDs []string
	// RuleID and Description belong to single-peer permissions (one CIDR
	// or one group), the form the security group handlers store.
	RuleID      string
	Description string
}

// SecurityGroup is an EC2 security group.
type SecurityGroup struct {
	ID          string
	Name        string
	Description string
	VpcID       string
	Ingress     []IPPermission
	Egress      []IPPermission
	IsDefault   bool
	Tags        Tags
	Created     time.Time
}

// KeyPair is an EC2 key pair. The sandbox keeps the public key so the
// linux runtime can put it into instances.
type KeyPair struct {
	ID          string
	Name        string
	Type        string // rsa or ed25519
	Fingerprint string
	PublicKey   string
	Tags        Tags
	Created     time.Time
}

// ImageBlockDevice is one block device mapping of an AMI.
type ImageBlockDevice struct {
	DeviceName          string
	SnapshotID          string
	VolumeSize          int
	VolumeType          string
	Encrypted           bool
	DeleteOnTermination bool
	VirtualName         string // ephemeral mappings
	NoDevice            bool
}

// LaunchPermissions says who, besides the owner, may launch an image.
type LaunchPermissions struct {
	UserIDs []string
	Groups  []string // "all" makes the image public
	OrgARNs []string
	OUARNs  []string
}

// Image is an AMI.
type Image struct {
	ID                 string
	Name               string
	Description        string
	OwnerID            string
	OwnerAlias         string // "amazon" for public images
	State              string // pending, available, failed, deregistered
	StateReason        string
	CreationDate       time.Time
	Architecture       string
	Platform           string
	PlatformDetails    string
	RootDeviceName     string
	RootDeviceType     string
	VirtualizationType string
	BootMode           string
	EnaSupport         bool
	ImdsSupport        string // "" or "v2.0"
	DeprecationTime    time.Time
	BlockDevices       []ImageBlockDevice
	Permissions        LaunchPermissions
	Tags               Tags
	// AccountTags are the tags other accounts put on the image, which
	// only they see (a shared image); by account id.
	AccountTags      map[string]*Tags
	SourceInstanceID string
	SourceImageID    string // for copies
	SourceRegion     string
	Builtin          bool // part of the fresh account's world, not inventory
	// Rootfs names the base file tree the image's Layers go on top of
	// (RootfsDebian12), or "" for images the linux runtime cannot boot.
	Rootfs      string
	Layers      []string
	Created     time.Time
	readyAt     time.Time
	ClientToken string // CopyImage idempotency
}

// Public reports whether anyone may launch the image.
func (im *Image) Public() bool {
	for _, g := range im.Permissions.Groups {
		if g == "all" {
			return true
		}
	}
	return false
}

// Snapshot is an EBS snapshot.
type Snapshot struct {
	ID          string
	VolumeID    string
	VolumeSize  int
	Encrypted   bool
	KmsKeyID    string // key ARN when encrypted
	State       string // pending, completed, error
	Progress    int
	OwnerID     string
	Description string
	StartTime   time.Time
	Tags        Tags
	Builtin     bool
	Bytes       int64 // real size of the layer in the linux runtime
	Created     time.Time
	readyAt     time.Time
	layerOp     *pending // the runtime freezing the layer (CreateImage)
	// inUseUntil and inUseBy: DeleteSnapshot answers InvalidSnapshot.InUse
	// until then, a while after inUseBy was deregistered.
	inUseUntil time.Time
	inUseBy    string
	// sourceKeyDenied marks a copy of another account's snapshot whose
	// KMS key that account did not share: the copy fails.
	sourceKeyDenied bool
	// CreateVolumePermissions says who may create volumes from the
	// snapshot (UserIDs, Groups "all"); ModifySnapshotAttribute.
	CreateVolumePermissions LaunchPermissions
}

// Volume is an EBS volume.
type Volume struct {
	ID                  string
	Size                int
	Type                string
	Iops                int
	Throughput          int
	Encrypted           bool
	KmsKeyID            string
	AZ                  string
	State               string // creating, available, in-use, deleting, deleted
	SnapshotID          string
	InstanceID          string
	Device              string
	DeleteOnTermination bool
	Tags                Tags
	Created             time.Time
}

// MetadataOptions are an instance's IMDS settings.
type MetadataOptions struct {
	HttpTokens              string // optional or required
	HttpEndpoint            string // enabled or disabled
	HttpPutResponseHopLimit int
	InstanceMetadataTags    string
}

// InstanceBlockDevice is an attached EBS volume.
type InstanceBlockDevice struct {
	DeviceName          string
	VolumeID            string
	DeleteOnTermination bool
}

// Instance is an EC2 instance.
type Instance struct {
	ID                 string
	ImageID            string
	InstanceType       string
	State              string // pending, running, stopping, stopped, shutting-down, terminated
	StateReason        string
	StateTransition    string
	KeyName            string
	SubnetID           string
	VpcID              string
	AZ                 string
	PrivateIP          string
	SecurityGroupIDs   []string
	UserData           string // base64, as sent
	IamInstanceProfile string // ARN
	Metadata           MetadataOptions
	LaunchTime         time.Time
	Tags               Tags
	BlockDevices       []InstanceBlockDevice
	RootDeviceName     string
	LaunchTemplateID   string
	LaunchTemplateVer  string
	Lifecycle          string // "" (On-Demand) or "spot"
	EbsOptimized       bool
	Monitoring         string // disabled or enabled (detailed)
	Tenancy            string // default, dedicated or host
	ClientToken        string
	ReservationID      string
	Console            []byte
	Created            time.Time
	Rootfs             string    // the image's, at launch
	Layers             []string  // the image's, at launch: kept for every boot
	rtOp               *pending  // the runtime's work for the current transition
	nextAt             time.Time // when the current transition completes
	terminatedAt       time.Time
}

// LaunchTemplateData is what a launch template version launches.
type LaunchTemplateData struct {
	ImageID            string
	InstanceType       string
	KeyName            string
	SecurityGroupIDs   []string
	SecurityGroups     []string
	UserData           string
	IamInstanceProfile string // ARN or name
	Metadata           *MetadataOptions
	BlockDevices       []LaunchBlockDevice
	TagSpecifications  []TagSpecification
	SubnetID           string // from a network interface, when given
	NetworkInterfaces  []LaunchNetworkInterface
	AZ                 string // Placement.AvailabilityZone
	Tenancy            string // Placement.Tenancy
	EbsOptimized       *bool
	Monitoring         *bool  // Monitoring.Enabled: detailed monitoring
	MarketType         string // InstanceMarketOptions.MarketType: "" or spot
	SpotMaxPrice       string
}

// LaunchNetworkInterface is a requested network interface (RunInstances,
// launch templates). Device index 0 gives the instance its subnet and
// security groups.
type LaunchNetworkInterface struct {
	DeviceIndex         int
	SubnetID            string
	GroupIDs            []string
	AssociatePublicIP   *bool
	DeleteOnTermination *bool
	Description         string
}

// LaunchBlockDevice is a requested block device mapping (RunInstances,
// launch templates).
type LaunchBlockDevice struct {
	DeviceName          string
	VirtualName         string
	NoDevice            bool
	SnapshotID          string
	VolumeSize          int
	VolumeType          string
	Iops                int
	Throughput          int
	Encrypted           *bool
	KmsKeyID            string
	DeleteOnTermination *bool
}

// TagSpecification tags resources at creation.
type TagSpecification struct {
	ResourceType string
	Tags         Tags
}

// LaunchTemplateVersion is one numbered version of a launch template.
type LaunchTemplateVersion struct {
	Number      int
	Description string
	Data        LaunchTemplateData
	Created     time.Time
	// launched is set once Auto Scaling has launched from the version
	// (the inventory reports it: a version a deploy ran is history, one
	// nothing ever ran may be a leak).
	launched bool
}

// LaunchTemplate is an EC2 launch template with its versions.
type LaunchTemplate struct {
	ID             string
	Name           string
	DefaultVersion int
	LatestVersion  int
	Versions       map[int]*LaunchTemplateVersion
	Tags           Tags
	Created        time.Time
}

// KMSKey is a KMS key.
type KMSKey struct {
	ID          string
	ARN         string
	Description string
	Enabled     bool
	State       string // Enabled, Disabled, PendingDeletion
	Manager     string // AWS or CUSTOMER
	Spec        string
	Usage       string
	Created     time.Time
	Builtin     bool
	Tags        Tags
	Grants      []KMSGrant
	// Policy is the key policy document as set; "" for KMS's default
	// key policy (defaultKeyPolicy).
	Policy string
	policy *keyPolicy // parsed Policy
}

// KMSGrant is a grant on a key.
type KMSGrant struct {
	ID              string
	Tokens          []string // every CreateGrant that returned this grant made a token
	Grantee         string
	GranteeService  string
	Operations      []string
	Name            string
	Retiring        string
	RetiringService string
	Constraints     *KMSGrantConstraints
	Created         time.Time
}

// KMSGrantConstraints are a grant's constraints.
type KMSGrantConstraints struct {
	EncryptionContextEquals map[string]string `json:",omitempty"`
	EncryptionContextSubset map[string]string `json:",omitempty"`
	SourceArn               string            `json:",omitempty"`
}

// KMSAlias names a key.
type KMSAlias struct {
	Name     string
	ARN      string
	TargetID string
	Builtin  bool
	Created  time.Time
}

// SSMParameter is a Parameter Store parameter: the versions Parameter
// Store retains (oldest first, at most 100), its tags, and an
// aws:ec2:image version still being validated. A parameter with no
// version yet (its first version is pending) does not exist for readers.
type SSMParameter struct {
	Name     string // as created: "/app/golden-ami" or "golden-ami"
	Versions []*SSMParameterVersion
	Tags     Tags
	Created  time.Time
	pending  *ssmPending
}

// SSMParameterVersion is one version of a parameter.
type SSMParameterVersion struct {
	Version        int64
	Type           string // String, StringList, SecureString
	DataType       string // text, aws:ec2:image
	Value          string // plaintext, also of a SecureString
	Description    string
	AllowedPattern string
	KeyID          string // SecureString: the key as given ("alias/aws/ssm" by default)
	Tier           string // Standard, Advanced
	Labels         []string
	Modified       time.Time
	User           string // LastModifiedUser
}

// LaunchTemplateRef points an ASG or a refresh at a launch template version.
type LaunchTemplateRef struct {
	ID      string
	Name    string
	Version string // "$Latest", "$Default" or a number; "" means $Default
}

// ASGInstance is an instance as the Auto Scaling group sees it.
type ASGInstance struct {
	ID                   string
	AZ                   string
	InstanceType         string
	LifecycleState       string            // Pending, InService, Terminating, Terminated, Standby, ...
	HealthStatus         string            // Healthy, Unhealthy
	LaunchTemplate       LaunchTemplateRef // with the concrete version number
	LaunchConfiguration  string            // the launch configuration's name, for an instance launched from one
	ProtectedFromScaleIn bool
	launchedAt           time.Time
	inServiceAt          time.Time

	// Wait is "Wait" while a lifecycle hook holds the instance
	// (Pending:Wait, Terminating:Wait); hookDone is the last transition
	// whose hooks it passed.
	Wait     string
	hookDone string
}

// ScalingActivity is one entry of DescribeScalingActivities.
type ScalingActivity struct {
	ID          string
	Description string
	Cause       string
	StartTime   time.Time
	EndTime     time.Time
	Status      string // Successful, Failed, InProgress, Cancelled
	StatusMsg   string
	Progress    int
}

// RefreshPreferences are StartInstanceRefresh's Preferences.
type RefreshPreferences struct {
	MinHealthyPercentage  int
	MaxHealthyPercentage  int
	InstanceWarmup        *int
	CheckpointPercentages []int
	CheckpointDelay       int
	SkipMatching          bool
	AutoRollback          bool
	ScaleInProtected      string
	Standby               string
	BakeTime              int
	AlarmNames            []string
}

// MaintenancePolicy is a group's instance maintenance policy: the healthy
// percentages a refresh uses when its preferences omit them.
type MaintenancePolicy struct {
	MinHealthyPercentage int
	MaxHealthyPercentage int
}

// InstanceRefresh is one instance refresh of a group.
type InstanceRefresh struct {
	ID                   string
	Status               string
	StatusReason         string
	StartTime            time.Time
	EndTime              time.Time
	PercentageComplete   int
	InstancesToUpdate    int
	Preferences          RefreshPreferences
	Desired              *LaunchTemplateRef
	DesiredMixed         *MixedInstancesPolicy // DesiredConfiguration.MixedInstancesPolicy
	PreviousTemplate     LaunchTemplateRef     // for rollback
	PreviousMixed        *MixedInstancesPolicy // for rollback, the group's policy before
	RollbackReason       string
	RollbackStartTime    time.Time
	PctBeforeRollback    int
	InstancesBeforeRback int
	state                any // controller-private progress
}

// AutoScalingGroup is an Auto Scaling group.
type AutoScalingGroup struct {
	Name                   string
	ARN                    string
	LaunchTemplate         *LaunchTemplateRef
	MixedInstancesPolicy   *MixedInstancesPolicy // instead of LaunchTemplate
	LaunchConfiguration    string                // a launch configuration's name, instead of either
	MinSize                int
	MaxSize                int
	DesiredCapacity        int
	DefaultCooldown        int
	DefaultInstanceWarmup  *int
	AZs                    []string
	SubnetIDs              []string
	TargetGroupARNs        []string
	HealthCheckType        string // EC2 or ELB
	HealthCheckGracePeriod int
	Instances              []*ASGInstance
	Tags                   []ASGTag
	Suspended              []string
	Status                 string // "" or "Delete in progress"
	Activities             []*ScalingActivity
	Refreshes              []*InstanceRefresh
	ScheduledActions       map[string]*ScheduledAction // by name
	ServiceLinkedRoleARN   string                      // the role its launches use
	Created                time.Time
	ctl                    *asgControl // controller-private state

	// NewInstancesProtectedFromScaleIn protects instances it launches.
	NewInstancesProtectedFromScaleIn bool
	// MaintenancePolicy is the group's instance maintenance policy; nil
	// when it has none.
	MaintenancePolicy *MaintenancePolicy
	// LifecycleHooks by name, and the instances waiting on them.
	LifecycleHooks map[string]*LifecycleHook
	hookWaits      map[string]*instanceWait
	// WarmPool is the group's warm pool (nil: none) and WarmInstances
	// the instances in it, which DescribeAutoScalingGroups does not list.
	WarmPool      *WarmPool
	WarmInstances []*ASGInstance
}

// ScheduledAction is a scheduled update of a group's size. Nil sizes
// leave the group's value as it is.
type ScheduledAction struct {
	Name            string
	ARN             string
	StartTime       time.Time // zero for a recurrence without a start
	EndTime         time.Time
	Recurrence      string
	TimeZone        string
	MinSize         *int
	MaxSize         *int
	DesiredCapacity *int
	due             time.Time // when the sandbox runs it: the wait until StartTime, scaled
}

// ASGTag is an Auto Scaling tag.
type ASGTag struct {
	Key               string
	Value             string
	PropagateAtLaunch bool
}

// TargetGroupHealthCheck holds a target group's health check settings.
type TargetGroupHealthCheck struct {
	Enabled            bool
	Protocol           string
	Port               string // "traffic-port" or a number
	Path               string
	IntervalSeconds    int
	TimeoutSeconds     int
	HealthyThreshold   int
	UnhealthyThreshold int
	Matcher            string // HTTP codes, "200" or "200-299"
}

// Target is a registered target and its health.
type Target struct {
	ID           string
	Port         int
	AZ           string
	State        string // initial, healthy, unhealthy, unused, draining, unavailable
	Reason       string
	Description  string
	RegisteredAt time.Time
	DrainUntil   time.Time
	// routableAt is when the target's registration has reached the load
	// balancer's nodes (lbpropagation.go).
	routableAt time.Time
	okRun      int
	failRun    int
	nextCheck  time.Time
	check      *pending // the runtime's health check in flight
}

// TargetGroup is an ELBv2 target group.
type TargetGroup struct {
	ARN         string
	Name        string
	Protocol    string
	Port        int
	VpcID       string
	TargetType  string
	HealthCheck TargetGroupHealthCheck
	Attributes  map[string]string
	Targets     []*Target
	Tags        Tags
	Created     time.Time
}

// LoadBalancer is an ELBv2 load balancer.
type LoadBalancer struct {
	ARN            string
	Name           string
	DNSName        string
	Scheme         string
	Type           string
	IPAddressType  string
	VpcID          string
	SubnetIDs      []string
	SecurityGroups []string
	State          string // provisioning, active
	Attributes     map[string]string
	Tags           Tags
	Created        time.Time
	readyAt        time.Time
	Address        string // loopback address of the linux runtime's proxy
}

// WeightedTargetGroup is one entry of a forward action.
type WeightedTargetGroup struct {
	ARN    string
	Weight int
}

// Action is a listener or rule action.
type Action struct {
	Type           string // forward, fixed-response, redirect, authenticate-oidc, authenticate-cognito
	Order          int
	Auth           *AuthAction // authenticate-oidc, authenticate-cognito
	TargetGroupARN string
	Forward        []WeightedTargetGroup
	Stickiness     bool
	StickinessSecs int
	FixedStatus    string
	FixedBody      string
	FixedType      string
	Redirect       map[string]string
}

// RuleCondition is a listener rule condition.
type RuleCondition struct {
	Field      string // path-pattern, host-header, ...
	Values     []string
	HeaderName string      // http-header
	QueryPairs [][2]string // query-string key/value pairs ("" key matches any)
}

// Rule is a listener rule; the default rule mirrors the listener's
// default actions.
type Rule struct {
	ARN         string
	ListenerARN string
	Priority    string // a number or "default"
	Conditions  []RuleCondition
	Actions     []Action
	Tags        Tags
	Created     time.Time
	// previous are the actions the load balancer's nodes route by until
	// propagatedAt, while a change of Actions propagates (lbpropagation.go).
	previous     []Action
	propagatedAt time.Time
}

// Listener is an ELBv2 listener.
type Listener struct {
	ARN             string
	LoadBalancerARN string
	Port            int
	Protocol        string
	DefaultActions  []Action
	Tags            Tags
	Created         time.Time
}
