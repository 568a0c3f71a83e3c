package formatter

import (
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
)

// DiskUsageImage is one image of `system df -v`: a single row named by its
// first tag ("<none>" for a dangling image), unlike `images`, which has a
// row per tag.
func DiskUsageImage(img image.Summary, trunc bool, now time.Time) any {
	repo, tag := "<none>", "<none>"
	if len(img.RepoTags) > 0 && !isDangling(img) {
		if ref, err := reference.ParseNormalizedNamed(img.RepoTags[0]); err == nil {
			if nt, ok := ref.(reference.NamedTagged); ok {
				repo, tag = reference.FamiliarName(ref), nt.Tag()
			}
		}
	}
	return &imageContext{i: img, repo: repo, tag: tag, trunc: trunc, now: now}
}
