package sandbox

import (
	"fmt"
	"sort"
	"strings"
)

// Resource is one inventory entry.
type Resource struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	Service string `json:"service"`
	Type    string `json:"type"`
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	State   string `json:"state,omitempty"`
	// Parent is the resource a nested entry belongs to (a launch
	// template's ID, a group's name); "" for a top-level resource.
	Parent string `json:"parent,omitempty"`
}

// Key identifies an entry across two inventories.
func (r Resource) Key() string {
	return r.Account + "/" + r.Region + "/" + r.Service + "/" + r.Type + "/" + r.ID
}

// Nested reports whether the entry is part of another resource and goes
// away with it.
func (r Resource) Nested() bool { return r.Parent != "" }

// Inventory lists every resource that clients created and that is not
// deleted, deregistered or terminated, in every region of every account.
// A fresh account's own resources (default VPC, public images,
// AWS-managed keys) are not in it, so after a clean test it is empty.
//
// It lists nested resources too, with their Parent, so that a test can
// compare what a piece of code left inside resources it did not create:
// each launch template version (its State marks the template's default
// and latest versions, and versions Auto Scaling has launched from),
// each Auto Scaling group's tags,
// scheduled actions, lifecycle hooks, warm pool and suspended processes,
// instances in Standby, and instances whose scale-in protection differs
// from what the group gives new instances (someone set it).
func (s *Sandbox) Inventory() []Resource {
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Resource
	for _, r := range w.sortedRegions() {
		add := func(svc, typ, id, name, state string) {
			out = append(out, Resource{Account: r.Account, Region: r.Name, Service: svc, Type: typ, ID: id, Name: name, State: state})
		}
		for _, v := range r.VPCs {
			if !v.IsDefault {
				add("ec2", "vpc", v.ID, v.Tags["Name"], "available")
			}
		}
		for _, v := range r.Subnets {
			if !v.IsDefault {
				add("ec2", "subnet", v.ID, v.Tags["Name"], "available")
			}
		}
		for _, v := range r.SecurityGroups {
			if !v.IsDefault {
				add("ec2", "security-group", v.ID, v.Name, "")
			}
		}
		for _, v := range r.KeyPairs {
			add("ec2", "key-pair", v.ID, v.Name, "")
		}
		for _, v := range r.Images {
			if !v.Builtin && v.State != "deregistered" {
				add("ec2", "image", v.ID, v.Name, v.State)
			}
		}
		for _, v := range r.Snapshots {
			if !v.Builtin {
				add("ec2", "snapshot", v.ID, v.Description, v.State)
			}
		}
		for _, v := range r.Volumes {
			if v.State != "deleted" {
				add("ec2", "volume", v.ID, "", v.State)
			}
		}
		for _, v := range r.Instances {
			if v.State != "terminated" {
				add("ec2", "instance", v.ID, v.Tags["Name"], v.State)
			}
		}
		for _, v := range r.LaunchTemplates {
			add("ec2", "launch-template", v.ID, v.Name, "")
			for n := range v.Versions {
				var marks []string
				if n == v.DefaultVersion {
					marks = append(marks, "default")
				}
				if n == v.LatestVersion {
					marks = append(marks, "latest")
				}
				if v.Versions[n].launched {
					marks = append(marks, "launched")
				}
				out = append(out, Resource{Account: r.Account, Region: r.Name, Service: "ec2", Type: "launch-template-version",
					ID: fmt.Sprintf("%s:%d", v.ID, n), Name: v.Name, State: strings.Join(marks, ","), Parent: v.ID})
			}
		}
		for _, v := range r.LaunchConfigs {
			add("autoscaling", "launch-configuration", v.Name, v.Name, "")
		}
		for _, v := range r.KMSKeys {
			if !v.Builtin && v.State != "PendingDeletion" {
				add("kms", "key", v.ID, v.Description, v.State)
			}
		}
		for _, v := range r.KMSAliases {
			if !v.Builtin {
				add("kms", "alias", v.Name, v.Name, "")
			}
		}
		for _, v := range r.ASGs {
			add("autoscaling", "auto-scaling-group", v.Name, v.Name, v.Status)
			out = append(out, groupParts(r, v)...)
		}
		for _, v := range r.LoadBalancers {
			add("elasticloadbalancing", "load-balancer", v.ARN, v.Name, v.State)
		}
		for _, v := range r.Listeners {
			add("elasticloadbalancing", "listener", v.ARN, "", "")
		}
		for _, v := range r.Rules {
			if v.Priority != "default" {
				add("elasticloadbalancing", "rule", v.ARN, "", "")
			}
		}
		for _, v := range r.TargetGroups {
			add("elasticloadbalancing", "target-group", v.ARN, v.Name, "")
		}
		for _, v := range r.SSMParameters {
			// A parameter whose first version is still being validated is
			// listed too: it exists once the validation passes.
			state := ""
			if len(v.Versions) == 0 {
				state = "pending-validation"
			}
			add("ssm", "parameter", v.Name, v.Name, state)
		}
		r.cloudWatchInventory(add)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.ID < b.ID
	})
	return out
}

// groupParts lists what lives inside group g.
func groupParts(r *Region, g *AutoScalingGroup) []Resource {
	var out []Resource
	add := func(typ, id, name, state string) {
		out = append(out, Resource{Account: r.Account, Region: r.Name, Service: "autoscaling", Type: typ, ID: g.Name + "/" + id, Name: name, State: state, Parent: g.Name})
	}
	for _, t := range g.Tags {
		add("group-tag", t.Key, t.Value, "")
	}
	for _, a := range g.ScheduledActions {
		add("scheduled-action", a.Name, a.Name, "")
	}
	for _, h := range g.LifecycleHooks {
		add("lifecycle-hook", h.Name, h.Transition, "")
	}
	if g.WarmPool != nil {
		add("warm-pool", "warm-pool", "", g.WarmPool.Status)
	}
	for _, p := range g.Suspended {
		add("suspended-process", p, p, "")
	}
	for _, in := range g.Instances {
		if in.LifecycleState == "Standby" || strings.HasPrefix(in.LifecycleState, "EnteringStandby") {
			add("instance-standby", in.ID, in.ID, in.LifecycleState)
		}
		if in.ProtectedFromScaleIn != g.NewInstancesProtectedFromScaleIn {
			state := "unprotected"
			if in.ProtectedFromScaleIn {
				state = "protected"
			}
			add("instance-protection", in.ID, in.ID, state)
		}
	}
	return out
}
