"""`completion bash|zsh`: a completion script generated from the parser itself, so it never drifts.

Verbs and their flags come from argparse; container and image names are asked of the daemon at
completion time (`ctrctl ps -a --format '{{.Names}}'`, `ctrctl images --format ...`).
"""

from __future__ import annotations

import argparse

from ctrctl.parser import build

_CONTAINER_VERBS = {"attach", "exec", "start", "stop", "restart", "kill", "rm", "pause", "unpause", "wait", "inspect",
                    "logs", "top", "stats", "rename", "update", "port"}
_IMAGE_VERBS = {"run", "create", "rmi"}


def _tree(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, list[str]]:
    """{"": [verbs], "run": [flags], "image": [subverbs], "image ls": [flags], ...}."""
    out: dict[str, list[str]] = {}
    verbs: list[str] = []
    flags: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                verbs.append(name)
                out.update(_tree(sub, f"{prefix} {name}".strip()))
        else:
            flags.extend(o for o in action.option_strings if o.startswith("--") or prefix)
    out[prefix] = sorted(set(verbs)) + sorted(set(flags))
    return out


def bash_script() -> str:
    tree = _tree(build(full=True))
    cases = "\n".join(f'        "{key}") words="{" ".join(words)}" ;;' for key, words in sorted(tree.items()))
    return f"""# ctrctl bash completion: source <(ctrctl completion bash)
_ctrctl() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" w i words
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in -*) continue ;; esac
        if [ -z "$path" ]; then path="$w"
        elif [ "$path" = image ]; then path="image $w"; break
        else break; fi
    done
    case "$path" in
{cases}
        *) words="" ;;
    esac
    case "$path" in
        {"|".join(sorted(_CONTAINER_VERBS))})
            [[ "$cur" != -* ]] && words="$words $(ctrctl ps -a --format '{{{{.Names}}}}' 2>/dev/null)" ;;
        {"|".join(sorted(_IMAGE_VERBS))}|"image rm"|"image inspect")
            [[ "$cur" != -* ]] && words="$words $(ctrctl images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 2>/dev/null)" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F _ctrctl ctrctl
"""


def zsh_script() -> str:
    # zsh runs bash completion functions through bashcompinit.
    return "#compdef ctrctl\n# ctrctl zsh completion: source <(ctrctl completion zsh)\n" \
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script()


def completion(args: argparse.Namespace) -> int:
    print(bash_script() if args.shell == "bash" else zsh_script(), end="")
    return 0
