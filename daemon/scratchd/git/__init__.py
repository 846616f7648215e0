"""pygit2-based repository access: refs, tree export, notes, and the watcher."""
