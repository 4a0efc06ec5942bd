"""Write docs/<tool>-help.txt from the `--help` of every command-line tool in the repository root.

    python docs/gen_cli_help.py                  # refresh the files in docs/
    python docs/gen_cli_help.py --dest=/tmp/x    # write them elsewhere (tests/test_docs.py compares)

A tool is a root-level script with a click command. Each one runs here exactly as
`COLUMNS=100 python <tool>.py --help` would (as __main__, with that argv), all in this one
process so that torch is imported once. The fixed width keeps the files the same on every
terminal.
"""

import argparse
import contextlib
import io
import os
import runpy
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TERMINAL_COLUMNS = '100'


def list_tools(repo_root=REPO_ROOT):
    """Script names (e.g. 'train.py') of the root-level click commands, sorted."""
    tools = []
    for name in sorted(os.listdir(repo_root)):
        path = os.path.join(repo_root, name)
        if name.endswith('.py') and os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                if '@click.command' in f.read():
                    tools.append(name)
    return tools


def help_file_name(tool):
    return f'{tool[:-len(".py")]}-help.txt'


def render_help(tool):
    """The text `python <tool> --help` prints, run from the repository root."""
    saved_argv = sys.argv
    output = io.StringIO()
    sys.argv = [tool, '--help']
    try:
        with contextlib.redirect_stdout(output):
            runpy.run_path(os.path.join(REPO_ROOT, tool), run_name='__main__')
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise RuntimeError(f'`python {tool} --help` exited with code {exit_.code}:\n{output.getvalue()}') from None
    finally:
        sys.argv = saved_argv
    return output.getvalue()


def main():
    parser = argparse.ArgumentParser(description='Write <tool>-help.txt from the --help of every command-line tool.')
    parser.add_argument('--dest', metavar='DIR', default=os.path.join(REPO_ROOT, 'docs'), help='Output folder [default: docs/]')
    dest = os.path.abspath(parser.parse_args().dest)
    os.environ['COLUMNS'] = TERMINAL_COLUMNS
    os.chdir(REPO_ROOT)
    sys.path.insert(0, REPO_ROOT)
    os.makedirs(dest, exist_ok=True)
    for tool in list_tools():
        path = os.path.join(dest, help_file_name(tool))
        text = render_help(tool)
        old = open(path, encoding='utf-8').read() if os.path.isfile(path) else None
        if text != old:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
        print(f'{path}: {"unchanged" if text == old else "written"}')


if __name__ == '__main__':
    main()
