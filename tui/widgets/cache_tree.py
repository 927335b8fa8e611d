"""The tree of caches and the repositories in each, with image counts and sizes.

Selecting a node narrows the image table to it; the root ("All caches") widens it
again. A refresh relabels the nodes whose totals changed and rebuilds the children
of a cache only when its set of repositories changed, so expansion and the
cursor survive the watcher's updates.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from imgcache.backends.config import CacheSpec
from imgcache.tui.format import human_size
from imgcache.tui.widgets.rows import NO_REPO, Row, Scope

Totals = dict[tuple[str, str | None], list[int]]


def totals(rows: Iterable[Row]) -> Totals:
    """(root, repository or None for the whole cache) -> [files, bytes]."""
    result: Totals = {}
    for row in rows:
        size = row.image.stat.size
        for key in ((row.image.root, None), (row.image.root, row.repo)):
            entry = result.get(key)
            if entry is None:
                result[key] = [1, size]
            else:
                entry[0] += 1
                entry[1] += size
    return result


def _order(repo: str) -> tuple[bool, str]:
    """Repositories by name, the files with no reference last."""
    return (repo == NO_REPO, repo.lower())


def _label(name: str, count: int, size: int, *, bold: bool = False) -> Text:
    text = Text(name, style="bold" if bold else "")
    text.append(f"  {count} · {human_size(size)}", style="dim")
    return text


class CacheTree(Tree[Scope | None]):
    """Caches -> repositories; each node shows how many files and how many bytes."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="cursor_up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="cursor_down"),
        Binding("home,g", "scroll_home", "First", show=False, id="cursor_top"),
        Binding("end,G", "scroll_end", "Last", show=False, id="cursor_bottom"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("All caches", style="bold"), None, id=id)
        self.show_root = True
        self.guide_depth = 2
        self._caches: dict[str, TreeNode[Scope | None]] = {}
        self._repos: dict[tuple[str, str], TreeNode[Scope | None]] = {}
        self._labels: dict[tuple[str, str | None], tuple[int, int]] = {}
        self._sums: Totals = {}
        self.root.expand()

    def show(self, specs: Sequence[CacheSpec], names: Mapping[str, str], sums: Totals) -> None:
        """Bring the tree in line with these totals (cheap when little changed).

        A collapsed cache gets its repository nodes only when it is opened: a cache
        of thousands of repositories costs nothing until someone looks into it.
        """
        self._sums = sums
        all_count = sum(v[0] for k, v in sums.items() if k[1] is None)
        all_size = sum(v[1] for k, v in sums.items() if k[1] is None)
        self._relabel(self.root, ("", None), "All caches", all_count, all_size, bold=True)
        for spec in specs:
            root = spec.path
            node = self._caches.get(root)
            count, size = sums.get((root, None), [0, 0])
            if node is None:
                node = self.root.add("", Scope(root))
                self._caches[root] = node
                if len(specs) == 1:
                    node.expand()
            self._relabel(node, (root, None), names.get(root, root), count, size, bold=True)
            if node.is_expanded:
                self._fill(node, root)

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded[Scope | None]) -> None:
        scope = event.node.data
        if scope is not None and scope.repo is None:
            self._fill(event.node, scope.root)

    def _fill(self, node: TreeNode[Scope | None], root: str) -> None:
        """Bring a cache node's repositories in line: add, remove, relabel what changed.

        Nodes are never rebuilt wholesale, so the cursor and the scroll position stay
        put and a refresh costs in proportion to what changed.
        """
        sums = self._sums
        wanted = sorted((repo for (r, repo) in sums if r == root and repo is not None), key=_order)
        wanted_set = set(wanted)
        for key in [k for k in self._repos if k[0] == root and k[1] not in wanted_set]:
            self._repos.pop(key).remove()
            self._labels.pop(key, None)
        have = sorted(_order(k[1]) for k in self._repos if k[0] == root)
        for repo in wanted:
            count, size = sums[(root, repo)]
            child = self._repos.get((root, repo))
            if child is not None:
                self._relabel(child, (root, repo), repo, count, size)
                continue
            # Keep the children sorted: insert before the first one that sorts after.
            key = _order(repo)
            index = bisect.bisect_left(have, key)
            child = node.add_leaf(_label(repo, count, size), Scope(root, repo), before=index)
            have.insert(index, key)
            self._repos[(root, repo)] = child
            self._labels[(root, repo)] = (count, size)

    def _relabel(
        self,
        node: TreeNode[Scope | None],
        key: tuple[str, str | None],
        name: str,
        count: int,
        size: int,
        *,
        bold: bool = False,
    ) -> None:
        if self._labels.get(key) != (count, size):
            self._labels[key] = (count, size)
            node.set_label(_label(name, count, size, bold=bold))
