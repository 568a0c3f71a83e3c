package engine

import (
	"fmt"
	"math/rand/v2"
)

// Word lists for generated container names ("quiet_kiri"): an adjective and
// a word from the craft of boxes and joinery, hako's namesake.
var (
	nameAdjectives = []string{
		"agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "deft",
		"eager", "fair", "fancy", "fleet", "fond", "gentle", "glad", "golden", "grand", "happy",
		"hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "mellow",
		"merry", "mighty", "modest", "neat", "nimble", "noble", "patient", "plucky", "polite", "proud",
		"quick", "quiet", "rapid", "ready", "serene", "sharp", "shiny", "silent", "smart", "snug",
		"steady", "sturdy", "sunny", "swift", "tidy", "trusty", "vivid", "warm", "wise", "witty",
	}
	nameNouns = []string{
		"ash", "bento", "birch", "box", "cedar", "chest", "crate", "dovetail", "drawer", "furoshiki",
		"hako", "hinoki", "hinge", "inro", "joint", "jubako", "kanna", "kiri", "kumiko", "lacquer",
		"lid", "maple", "mortise", "nomi", "oak", "origami", "pine", "plane", "rabbet", "sashimono",
		"saw", "shoji", "sugi", "tansu", "tenon", "tray", "urushi", "washi", "yosegi", "zelkova",
	}
)

// randomName returns a generated name; from the second try on it gets a
// number, so a crowded host still finds a free one.
func randomName(try int) string {
	n := nameAdjectives[rand.IntN(len(nameAdjectives))] + "_" + nameNouns[rand.IntN(len(nameNouns))]
	if try > 0 {
		n += fmt.Sprint(rand.IntN(10))
	}
	return n
}
