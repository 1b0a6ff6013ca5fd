//go:build race

package runtime

// raceEnabled: the race detector is on; its sync.Pool drops items at
// random, so allocation counts vary from run to run.
const raceEnabled = true
