package printer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
)

var at = time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)

func events() []deployer.Event {
	rf := &deployer.Refresh{ID: "r-1", Status: "InProgress", Percent: 33, Reason: "Waiting for instances to warm up before continuing.", Started: at}
	h := &deployer.Health{AMI: "ami-2", Healthy: 1, Total: 4, Draining: 1, Desired: 3, Problems: []string{"i-1 in web is draining"}}
	return []deployer.Event{
		{Time: at, Target: "web", Kind: deployer.EventStep, Step: "lock", Message: `locked "web" for deploy d1`},
		{Time: at, Target: "web", Kind: deployer.EventProgress, Step: "refresh", Refresh: rf, Health: h},
		{Time: at, Target: "web", Kind: deployer.EventProgress, Step: "refresh", Refresh: rf, Health: h}, // same again: not printed
		{Time: at, Target: "web", Kind: deployer.EventProgress, Step: "health", Health: &deployer.Health{AMI: "ami-2", Healthy: 2, Total: 3, Problems: []string{"i-3 in web is unhealthy (Target.ResponseCodeMismatch)"}}},
		{Time: at, Target: "web", Kind: deployer.EventWarning, Message: "describing target health of web: throttled"},
	}
}

func TestTextLines(t *testing.T) {
	var out bytes.Buffer
	p, err := New(Text, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events() {
		p.Event(e)
	}
	p.Result(&deployer.Result{Target: "web", Outcome: deployer.RolledBack, Message: "deploy failed and was rolled back: x"})
	want := `web: locked "web" for deploy d1
web: [refresh] refresh InProgress 33% healthy 1/4 on ami-2 1 draining: Waiting for instances to warm up before continuing.
web: [health] healthy 2/3 on ami-2: i-3 in web is unhealthy (Target.ResponseCodeMismatch)
web: warning: describing target health of web: throttled
web: rolled back: deploy failed and was rolled back: x
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	p, err := New(JSON, &out)
	if err != nil {
		t.Fatal(err)
	}
	ev := events()
	p.Event(ev[0])
	p.Event(ev[3])
	p.Result(&deployer.Result{Target: "web", Region: "eu-west-1", Group: "web", Strategy: "rolling", AMI: "ami-2", Previous: "ami-1", Template: "lt-1", Version: 2, Refresh: "r-1",
		Outcome: deployer.Succeeded, Message: "ok", Started: at, Ended: at.Add(time.Minute)})
	want := `{"type":"event","time":"2026-11-25T22:00:00Z","target":"web","kind":"step","message":"locked \"web\" for deploy d1","step":"lock"}
{"type":"event","time":"2026-11-25T22:00:00Z","target":"web","kind":"progress","health":{"ami":"ami-2","healthy":2,"total":3,"on_ami":0,"draining":0,"desired":0,"target_groups":null,"problems":["i-3 in web is unhealthy (Target.ResponseCodeMismatch)"]},"step":"health"}
{"type":"result","outcome":"succeeded","target":"web","region":"eu-west-1","group":"web","strategy":"rolling","ami":"ami-2","previous_ami":"ami-1","launch_template":"lt-1","launch_template_version":2,"instance_refresh":"r-1","message":"ok","started":"2026-11-25T22:00:00Z","ended":"2026-11-25T22:01:00Z"}
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := New("yaml", &bytes.Buffer{}); err == nil {
		t.Error("yaml accepted")
	}
}

func pruneResult() *deployer.PruneResult {
	return &deployer.PruneResult{
		PruneSummary:        deployer.PruneSummary{Region: "eu-west-1", Family: "web", Keep: 1, Kept: 2, ToDeregister: 2, Deregistered: 1, SnapshotsDeleted: 2, Failed: 2, LeftBehind: 2},
		LeftBehindSnapshots: []deployer.PruneSnapshot{{ID: "snap-7", Image: "ami-7", Deleted: true}, {ID: "snap-8", Image: "ami-8", Error: "InvalidSnapshot.InUse"}},
		Images: []deployer.PruneImage{
			{ID: "ami-3", Name: "web-3", State: "available", Created: at, Action: deployer.PruneKeep, Reasons: []string{"newest 1"}},
			{ID: "ami-2", Name: "web-2", State: "available", Created: at, Action: deployer.PruneKeep, Reasons: []string{"in use by auto scaling group web (launch template lt-1 version 4)", "running on i-1"}},
			{ID: "ami-1", Name: "web-1", State: "available", Created: at, Action: deployer.PruneDeregister, Snapshots: []string{"snap-1"}, Deregistered: true, DeletedSnapshots: []string{"snap-1"}},
			{ID: "ami-0", Name: "web-0", State: "failed", Created: at, Action: deployer.PruneDeregister, Error: "deregistering: boom"},
		},
	}
}

func TestPruneText(t *testing.T) {
	var out bytes.Buffer
	p, _ := New(Text, &out)
	r := pruneResult()
	p.Prune(r)
	want := `Pruning image family web in eu-west-1: keeping the newest 1 and every image in use
  keep        ami-3 (web-3): newest 1
  keep        ami-2 (web-2): in use by auto scaling group web (launch template lt-1 version 4); running on i-1
  deregister  ami-1 (web-1): snapshots snap-1
  deregister  ami-0 (web-0): no snapshots: failed: deregistering: boom
  delete      snap-7: left behind by an earlier prune (its image ami-7 is gone)
  delete      snap-8: left behind by an earlier prune (its image ami-8 is gone): failed: InvalidSnapshot.InUse
web: deregistered 1 of 2 images, deleted 2 snapshots, kept 2; 2 failed
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	r.DryRun, r.Deregistered, r.SnapshotsDeleted, r.Failed = true, 0, 0, 0
	for i := range r.Images {
		r.Images[i].Error, r.Images[i].Deregistered, r.Images[i].DeletedSnapshots = "", false, nil
	}
	for i := range r.LeftBehindSnapshots {
		r.LeftBehindSnapshots[i].Error, r.LeftBehindSnapshots[i].Deleted = "", false
	}
	p.Prune(r)
	want = `Pruning image family web in eu-west-1: keeping the newest 1 and every image in use (dry run: nothing is changed)
  keep        ami-3 (web-3): newest 1
  keep        ami-2 (web-2): in use by auto scaling group web (launch template lt-1 version 4); running on i-1
  deregister  ami-1 (web-1): snapshots snap-1
  deregister  ami-0 (web-0): no snapshots
  delete      snap-7: left behind by an earlier prune (its image ami-7 is gone)
  delete      snap-8: left behind by an earlier prune (its image ami-8 is gone)
web: dry run: would deregister 2 images and delete 3 snapshots, keep 2
`
	if out.String() != want {
		t.Errorf("dry run: got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestPruneJSON(t *testing.T) {
	var out bytes.Buffer
	p, _ := New(JSON, &out)
	p.Prune(pruneResult())
	want := `{"type":"image","id":"ami-3","name":"web-3","state":"available","created":"2026-11-25T22:00:00Z","action":"keep","reasons":["newest 1"]}
{"type":"image","id":"ami-2","name":"web-2","state":"available","created":"2026-11-25T22:00:00Z","action":"keep","reasons":["in use by auto scaling group web (launch template lt-1 version 4)","running on i-1"]}
{"type":"image","id":"ami-1","name":"web-1","state":"available","created":"2026-11-25T22:00:00Z","action":"deregister","snapshots":["snap-1"],"deregistered":true,"deleted_snapshots":["snap-1"]}
{"type":"image","id":"ami-0","name":"web-0","state":"failed","created":"2026-11-25T22:00:00Z","action":"deregister","error":"deregistering: boom"}
{"type":"left_behind_snapshot","id":"snap-7","image":"ami-7","deleted":true}
{"type":"left_behind_snapshot","id":"snap-8","image":"ami-8","error":"InvalidSnapshot.InUse"}
{"type":"prune","region":"eu-west-1","family":"web","keep":1,"dry_run":false,"kept":2,"to_deregister":2,"deregistered":1,"snapshots_deleted":2,"failed":2,"left_behind":2}
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// A canary judge's verdict reads as one line of text and carries its
// figures in JSON.
func TestVerdictLines(t *testing.T) {
	v := &deployer.Verdict{Step: 10, Result: "fail", Statistic: "p99", Reason: "5xx share 50.0% is 50.0 points above the old colour's 0.0% (judge_max_5xx_increase 1)",
		New: deployer.Figures{Colour: "green", TargetGroup: "web-green", Requests: 40, Errors: 20, ErrorShare: 50, Latency: 0.012},
		Old: deployer.Figures{Colour: "blue", TargetGroup: "web-blue", Requests: 360, ErrorShare: 0, Latency: 0.011}, From: at, To: at.Add(time.Minute)}
	e := deployer.Event{Time: at, Target: "web", Kind: deployer.EventProgress, Step: "judge", Message: v.String(), Verdict: v}
	var text, js bytes.Buffer
	for f, out := range map[string]*bytes.Buffer{Text: &text, JSON: &js} {
		p, err := New(f, out)
		if err != nil {
			t.Fatal(err)
		}
		p.Event(e)
	}
	wantText := "web: [judge] judge at 10%: fail: new green 40 requests, 20 5xx (50.0%), 12 ms; old blue 360 requests, 0 5xx (0.0%), 11 ms: 5xx share 50.0% is 50.0 points above the old colour's 0.0% (judge_max_5xx_increase 1)\n"
	if text.String() != wantText {
		t.Errorf("text\n%s\nwant\n%s", text.String(), wantText)
	}
	wantJSON := `"verdict":{"step":10,"result":"fail","statistic":"p99","new":{"colour":"green","target_group":"web-green","requests":40,"errors_5xx":20,"error_share_percent":50,"latency_seconds":0.012},"old":{"colour":"blue","target_group":"web-blue","requests":360,"errors_5xx":0,"error_share_percent":0,"latency_seconds":0.011},"reason":"5xx share 50.0% is 50.0 points above the old colour's 0.0% (judge_max_5xx_increase 1)","from":"2026-11-25T22:00:00Z","to":"2026-11-25T22:01:00Z"}`
	if !bytes.Contains(js.Bytes(), []byte(wantJSON)) {
		t.Errorf("JSON\n%s\nlacks\n%s", js.String(), wantJSON)
	}
}

// Status lists the gates: each alarm's state, and the judge's comparison
// of the colours.
func TestStatusGates(t *testing.T) {
	var out bytes.Buffer
	p, err := New(Text, &out)
	if err != nil {
		t.Fatal(err)
	}
	v := &deployer.Verdict{Step: 100, Result: "pass", Reason: "within judge_max_5xx_increase 1 and judge_max_latency_ratio 1.5",
		New: deployer.Figures{Colour: "green", Requests: 900, Latency: 0.012}, Old: deployer.Figures{Colour: "blue", Requests: 300, Latency: 0.012}}
	p.Status(&deployer.Status{Target: "web", Region: "eu-west-1", Group: "web-green", Health: &deployer.Health{AMI: "ami-2", Healthy: 2, Total: 2, Desired: 2},
		Gates: &deployer.GateStatus{Alarms: []deployer.AlarmState{{Name: "web-5xx", State: "OK"}, {Name: "web-p99", State: "ALARM", Text: `alarm "web-p99" is in ALARM: …`}}, Judge: v}})
	for _, want := range []string{
		"  alarms         web-5xx OK\n",
		"                 alarm \"web-p99\" is in ALARM: …\n",
		"  judge          last 10m0s: judge at 100%: pass: new green 900 requests, 0 5xx (0.0%), 12 ms; old blue 300 requests, 0 5xx (0.0%), 12 ms: within judge_max_5xx_increase 1 and judge_max_latency_ratio 1.5\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
