package owner

import (
	"maps"
	"testing"
)

// The keys and values are a contract with the resources already in the
// clouds: gc finds and trusts a volume or snapshot by them, so a changed
// spelling would leave every resource made before it behind (or take a
// user's). They change only with a migration.
func TestSpellings(t *testing.T) {
	for got, want := range map[string]string{
		Purpose: "purpose", Bake: "bake", Host: "host", Base: "base",
		PurposeWork: "amination", PurposePool: "pool", PurposeExternal: "external",
		Copying: "aminator:copying", CopyHost: "aminator:copy_host", Push: "aminator:push", PushHost: "aminator:push_host",
	} {
		if got != want {
			t.Errorf("%q is spelled %q: resources tagged before are no longer found", want, got)
		}
	}
}

func TestBuildAndRead(t *testing.T) {
	w := Work("bake-1", "i-1")
	if want := map[string]string{"purpose": "amination", "bake": "bake-1", "host": "i-1"}; !maps.Equal(w, want) {
		t.Errorf("Work = %v, want %v", w, want)
	}
	p := Pooled("ami-1", "i-1")
	if want := map[string]string{"purpose": "pool", "base": "ami-1", "host": "i-1"}; !maps.Equal(p, want) {
		t.Errorf("Pooled = %v, want %v", p, want)
	}
	for _, tc := range []struct {
		tags         map[string]string
		work, pooled bool
	}{
		{w, true, false},
		{p, false, true},
		{map[string]string{Purpose: PurposeExternal}, false, false},
		{nil, false, false},
	} {
		if IsWork(tc.tags) != tc.work || IsPooled(tc.tags) != tc.pooled {
			t.Errorf("%v: IsWork %v IsPooled %v, want %v %v", tc.tags, IsWork(tc.tags), IsPooled(tc.tags), tc.work, tc.pooled)
		}
	}
}
