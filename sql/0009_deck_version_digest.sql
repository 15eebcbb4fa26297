-- Issue 17: a route's `rates =` in `warpd apply` is a deck version. The fingerprint of the rows
-- of a version made by `warpd apply` (warpd_core::provision::values::Digest, as text with its
-- scheme) lets a re-apply of the same file be recognized without reading the version's rows.
-- NULL (versions from `warpd deck import`, baselines): compared by reading their rows.
ALTER TABLE deck_versions ADD COLUMN content_digest text;
