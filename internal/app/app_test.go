package app

import (
	"slices"
	"testing"
)

// three is an app shaped like the capstone: a back end, a service in front
// of it and a published entry in front of that.
func three() App {
	return App{Name: "three", Network: "n", Containers: []Container{
		{Name: "back", Port: 1}, {Name: "mid", Port: 2}, {Name: "front", Port: 3, Publish: 80},
	}, HTTP: HTTP{Container: "front", Path: "/"}}
}

func TestPath(t *testing.T) {
	a := three()
	if got := a.ContainerNames(); !slices.Equal(got, []string{"back", "mid", "front"}) {
		t.Errorf("ContainerNames = %v", got)
	}
	if a.Entry().Name != "front" {
		t.Errorf("Entry = %+v, want front", a.Entry())
	}
	if up, ok := a.Upstream("front"); !ok || up.Name != "mid" {
		t.Errorf("Upstream(front) = %+v, %v; want mid", up, ok)
	}
	if up, ok := a.Upstream("back"); ok {
		t.Errorf("Upstream(back) = %+v; the back end has none", up)
	}
	if _, ok := a.Upstream("nothere"); ok {
		t.Error("Upstream of a container the app lacks")
	}
	if got := a.Published(); !slices.Equal(got, []int{80}) {
		t.Errorf("Published = %v, want [80]", got)
	}
}

func TestRegistry(t *testing.T) {
	b := three()
	b.Name, b.Image = "b", "img"
	r := NewRegistry(three(), b)
	if got, ok := r.Lookup("b"); !ok || got.Image != "img" {
		t.Errorf("Lookup(b) = %+v, %v", got, ok)
	}
	if _, ok := r.Lookup("c"); ok {
		t.Error("Lookup(c) found an app that is not there")
	}
	if got := r.String(); got != "three or b" {
		t.Errorf("String = %q", got)
	}
	if got := NewRegistry(b).String(); got != "b" {
		t.Errorf("String of one = %q", got)
	}
	if got := r.Containers()["b"]; !slices.Equal(got, []string{"back", "mid", "front"}) {
		t.Errorf("Containers[b] = %v", got)
	}
	if got := r.Images()["b"]; got != "img" {
		t.Errorf("Images[b] = %q", got)
	}
}
