package awstag

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestEC2SortsByKey(t *testing.T) {
	got := EC2(map[string]string{"phoenix:build-id": "b", "Name": "web", "app": ""})
	want := []string{"Name=web", "app=", "phoenix:build-id=b"}
	if len(got) != len(want) {
		t.Fatalf("%d tags, want %d", len(got), len(want))
	}
	for i, tag := range got {
		if s := aws.ToString(tag.Key) + "=" + aws.ToString(tag.Value); s != want[i] {
			t.Errorf("tag %d is %s, want %s", i, s, want[i])
		}
	}
	if EC2(nil) == nil || len(EC2(nil)) != 0 {
		t.Error("no tags must be an empty list")
	}
}
