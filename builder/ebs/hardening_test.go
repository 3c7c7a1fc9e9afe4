package ebs

import "testing"

func TestParseHardeningReport(t *testing.T) {
	cases := []struct {
		name, doc string
		profile   string
		score     float64
		lynis     int
		wantErr   bool
	}{
		{"phoenix-harden report", `{"platform":{"name":"debian"},"profiles":[{"name":"baseline","controls":[]}],"phoenix":{"phase":"apply","profile":"baseline","score":96,"counts":{"passed":48}}}`, "baseline", 96, -1, false},
		{"with a Lynis audit", `{"profiles":[{"name":"baseline"}],"phoenix":{"profile":"baseline","score":100,"audit":{"tool":"lynis","version":"3.0.8","hardening_index":74,"error":""}}}`, "baseline", 100, 74, false},
		{"failed Lynis audit", `{"profiles":[{"name":"baseline"}],"phoenix":{"profile":"baseline","score":100,"audit":{"tool":"lynis","hardening_index":-1,"error":"apt-get update failed"}}}`, "baseline", 100, -1, false},
		{"profile from profiles", `{"profiles":[{"name":"cis-level1"}],"statistics":{"score":88.5}}`, "cis-level1", 88.5, -1, false},
		{"no score", `{"profiles":[{"name":"baseline"}]}`, "", 0, -1, true},
		{"no profile", `{"phoenix":{"score":50}}`, "", 0, -1, true},
		{"not json", `score: 100`, "", 0, -1, true},
	}
	for _, tc := range cases {
		r, err := parseHardeningReport([]byte(tc.doc))
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil || r.Profile != tc.profile || r.Score != tc.score || r.LynisIndex != tc.lynis {
			t.Errorf("%s: %+v %v, want %s %v lynis %d", tc.name, r, err, tc.profile, tc.score, tc.lynis)
		}
	}
}
