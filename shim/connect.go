package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hako-project/hako/internal/timerslack"
	"github.com/hako-project/hako/shim/internal/proto"
	"github.com/hako-project/hako/shim/runtime"
)

// Connect returns a client for the shim that runs in stateDir, as hakod
// does for each container when it starts again. If the shim is not
// running the error is a *GoneError (errors.Is(err, ErrGone)) carrying the
// recorded exit status, if any; Cleanup then removes what is left.
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	cfg, err := readConfig(stateDir)
	if err != nil {
		return nil, err
	}
	c := newClient(cfg.ID, stateDir, 0)
	st, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	c.pid = st.Pid
	return c, nil
}

// Cleanup removes what a shim that is no longer running left behind: the
// container in the runtime (`delete --force`, which also kills processes
// the container still has) and the state directory. It returns the
// recorded exit status, if any. It refuses while the shim runs: delete
// through the shim then.
func Cleanup(ctx context.Context, stateDir string) (*ExitStatus, error) {
	cfg, err := readConfig(stateDir)
	if err != nil {
		return nil, err
	}
	if conn, err := proto.Dial(ctx, filepath.Join(stateDir, proto.SocketFile)); err == nil {
		conn.Close()
		return nil, fmt.Errorf("%w: shim of %s is running: delete through it", ErrConflict, cfg.ID)
	}
	exit := readExit(stateDir)
	args := []string{}
	if cfg.RuntimeRoot != "" {
		args = append(args, "--root", cfg.RuntimeRoot)
	}
	args = append(append(args, cfg.RuntimeArgs...), "delete", "--force", cfg.ID)
	cmd := exec.CommandContext(ctx, cfg.Runtime, args...)
	cmd.Env = runtime.Env(cfg.Env)
	// The runtime runs the poststop hooks: hakod's original timer slack.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = timerslack.Fork(cmd.Start)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return exit, fmt.Errorf("%s delete --force %s: %w: %s", filepath.Base(cfg.Runtime), cfg.ID, err, strings.TrimSpace(out.String()))
	}
	if err := os.RemoveAll(stateDir); err != nil {
		return exit, fmt.Errorf("remove shim state directory: %w", err)
	}
	return exit, nil
}

// readConfig reads the configuration Start wrote into a state directory.
func readConfig(stateDir string) (proto.Config, error) {
	var cfg proto.Config
	b, err := os.ReadFile(filepath.Join(stateDir, proto.ConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cfg, fmt.Errorf("%w: no shim state in %s", ErrNotFound, stateDir)
		}
		return cfg, fmt.Errorf("shim state in %s: %w", stateDir, err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("shim state in %s: %s: %w", stateDir, proto.ConfigFile, err)
	}
	return cfg, nil
}
