package sandbox

// Launch data beyond the image, network and storage: placement tenancy,
// EBS optimisation, detailed monitoring and the Spot market. Launch
// templates carry them, launch configurations carry most of them, and a
// mixed instances policy decides the market itself.
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RequestLaunchTemplateData.html

// mergeLaunchPlacement reads those fields of a RequestLaunchTemplateData
// (or RunInstances) over d.
func mergeLaunchPlacement(d *LaunchTemplateData, p Params) *APIError {
	if p.Has("Placement.Tenancy") {
		t := p.Get("Placement.Tenancy")
		if !contains([]string{"default", "dedicated", "host"}, t) {
			return errf("InvalidParameterValue", "Value (%s) for parameter tenancy is invalid. Valid values: default, dedicated, host", t)
		}
		d.Tenancy = t
	}
	var err *APIError
	if p.Has("EbsOptimized") {
		if d.EbsOptimized, err = p.BoolPtr("EbsOptimized"); err != nil {
			return err
		}
	}
	if p.Has("Monitoring.Enabled") {
		if d.Monitoring, err = p.BoolPtr("Monitoring.Enabled"); err != nil {
			return err
		}
	}
	if p.HasSub("InstanceMarketOptions") {
		m := p.Sub("InstanceMarketOptions")
		switch t := m.Get("MarketType"); t {
		case "spot":
			d.MarketType, d.SpotMaxPrice = t, m.Get("SpotOptions.MaxPrice")
		case "":
			d.MarketType, d.SpotMaxPrice = "", ""
		default:
			return errf("InvalidParameterValue", "The sandbox plays the spot market type only, not %s", t)
		}
	}
	return nil
}

// renderLaunchPlacement is the ResponseLaunchTemplateData side of
// mergeLaunchPlacement (the placement element is rendered with the
// availability zone).
func renderLaunchPlacement(d LaunchTemplateData) []*X {
	var out []*X
	out = append(out, BPtr("ebsOptimized", d.EbsOptimized))
	if d.Monitoring != nil {
		out = append(out, E("monitoring", B("enabled", *d.Monitoring)))
	}
	if d.MarketType != "" {
		out = append(out, E("instanceMarketOptions", T("marketType", d.MarketType), E("spotOptions", Opt("maxPrice", d.SpotMaxPrice))))
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
