package sandbox

import "time"

// Test-only access for the image tests, which need instances while the
// RunInstances handler is written elsewhere.

// ImgTestLaunch launches one instance of imageID in region through the
// core launch path and returns its id.
func ImgTestLaunch(sb *Sandbox, region, imageID string, bdms ...LaunchBlockDevice) (string, error) {
	w := sb.world
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.region(region)
	if err != nil {
		return "", err
	}
	insts, err := r.launchInstances(launchSpec{Data: LaunchTemplateData{ImageID: imageID, InstanceType: "t3.micro", BlockDevices: bdms}, Count: 1})
	if err != nil {
		return "", err
	}
	return insts[0].ID, nil
}

// ImgTestInstanceState returns an instance's state ("" when unknown).
func ImgTestInstanceState(sb *Sandbox, region, id string) string {
	w := sb.world
	w.mu.Lock()
	defer w.mu.Unlock()
	if r, ok := w.regions[regionKey{AccountID, region}]; ok {
		if inst, ok := r.Instances[id]; ok {
			return inst.State
		}
	}
	return ""
}

// ImgTestStop stops an instance.
func ImgTestStop(sb *Sandbox, region, id string) {
	imgTestDo(sb, region, id, func(r *Region, inst *Instance) { r.stopInstance(inst, false) })
}

// ImgTestTerminate begins terminating an instance.
func ImgTestTerminate(sb *Sandbox, region, id string) {
	imgTestDo(sb, region, id, func(r *Region, inst *Instance) { r.terminateInstance(inst, "") })
}

func imgTestDo(sb *Sandbox, region, id string, f func(*Region, *Instance)) {
	w := sb.world
	w.mu.Lock()
	defer w.mu.Unlock()
	if r, ok := w.regions[regionKey{AccountID, region}]; ok {
		if inst, ok := r.Instances[id]; ok {
			f(r, inst)
		}
	}
}

// ImgTestSetDeprecation sets an image's deprecation time directly, also
// in the past, which EnableImageDeprecation refuses.
func ImgTestSetDeprecation(sb *Sandbox, region, id string, at time.Time) {
	w := sb.world
	w.mu.Lock()
	defer w.mu.Unlock()
	if r, ok := w.regions[regionKey{AccountID, region}]; ok {
		if im, ok := r.Images[id]; ok {
			im.DeprecationTime = at
		}
	}
}
