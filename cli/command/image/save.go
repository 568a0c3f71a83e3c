package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hako-project/hako/cli/command"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// NewSaveCommand is `hako save`.
func NewSaveCommand(cli *command.Cli) *cobra.Command {
	var output, platform string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && cli.Out.IsTerminal() {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			if output != "" {
				if err := checkWritableDir(output); err != nil {
					return fmt.Errorf("failed to save image: %w", err)
				}
			}
			var opts []client.ImageSaveOption
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageSaveWithPlatforms([]ocispec.Platform{p}...))
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			rc, err := api.ImageSave(cmd.Context(), args, opts...)
			if err != nil {
				return err
			}
			defer rc.Close()
			if output == "" {
				_, err := io.Copy(cli.Out, rc)
				return err
			}
			return writeFileAtomic(output, rc)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	fs.StringVar(&platform, "platform", "", "Save only the given platform variant")
	return cmd
}

func checkWritableDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("invalid output path: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("invalid output path: %q must be a directory", dir)
	}
	return nil
}

// writeFileAtomic writes r to a temporary file beside path and renames
// it into place, so an interrupted save never leaves a truncated archive
// under the final name.
func writeFileAtomic(path string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("failed to create temporary file: %w", err)
	}
	tmp := f.Name()
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("failed to save image: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to save image: %w", err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to save image: %w", err)
	}
	return nil
}
