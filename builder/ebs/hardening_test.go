package ebs

import "testing"

func TestParseHardeningReport(t *testing.T) {
	cases := []struct {
		name, doc string
		profile   string
		score     float64
		wantErr   bool
	}{
		{"phoenix-harden report", `{"platform":{"name":"debian"},"profiles":[{"name":"baseline","controls":[]}],"phoenix":{"phase":"apply","profile":"baseline","score":96,"counts":{"passed":48}}}`, "baseline", 96, false},
		{"profile from profiles", `{"profiles":[{"name":"cis-level1"}],"statistics":{"score":88.5}}`, "cis-level1", 88.5, false},
		{"no score", `{"profiles":[{"name":"baseline"}]}`, "", 0, true},
		{"no profile", `{"phoenix":{"score":50}}`, "", 0, true},
		{"not json", `score: 100`, "", 0, true},
	}
	for _, tc := range cases {
		r, err := parseHardeningReport([]byte(tc.doc))
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil || r.Profile != tc.profile || r.Score != tc.score {
			t.Errorf("%s: %+v %v, want %s %v", tc.name, r, err, tc.profile, tc.score)
		}
	}
}
