"""Versions are pinned once (requirements/constraints.txt); the README's table
and the install script agree with it; setup.py states ranges, not pins."""
import ast
import os.path as osp
import re

from _helpers import REPO_ROOT


def constraints() -> dict:
    """package name -> specifier text, e.g. {'torch': '==2.13.0', 'numpy': '<2'}."""
    pins = {}
    with open(osp.join(REPO_ROOT, 'requirements', 'constraints.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                name, spec = re.match(r'([A-Za-z0-9_.-]+)\s*(.*)', line).groups()
                pins[name.lower()] = spec.replace(' ', '')
    return pins


def readme_versions() -> dict:
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        text = f.read()
    section = text[text.index('## Versions'):]
    section = section[:section.index('\n## ', 4)]
    rows = re.findall(r'^\| ([A-Za-z0-9_.-]+) \| ([^|]+) \|', section, re.M)
    return {name.lower(): spec.strip().replace(' ', '') for name, spec in rows
            if name != 'package'}


def test_readme_version_table_is_the_constraints_file():
    assert readme_versions() == constraints()


def test_install_script_takes_every_version_from_the_constraints_file():
    with open(osp.join(REPO_ROOT, 'tools', 'install.sh')) as f:
        script = f.read()
    assert 'PIP=("$PY" -m pip install --constraint "$CONSTRAINTS")' in script
    pip_lines = [line for line in script.splitlines()
                 if '"${PIP[@]}"' in line or 'pip download' in line]
    assert pip_lines
    for line in pip_lines:
        # a package argument with a version specifier, e.g. mmdet==3.3.0 or "numpy<2"
        assert not re.search(r'[A-Za-z0-9_"]\s*(==|<=|>=|<|>)\s*[0-9]', line), line
    assert set(re.findall(r'\$\(pinned ([a-z0-9_.-]+)\)', script)) <= set(constraints())


def test_setup_declares_ranges_not_pins():
    tree = ast.parse(open(osp.join(REPO_ROOT, 'setup.py')).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, 'id', '') == 'setup')
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords
              if k.arg in ('install_requires', 'extras_require')}
    requirements = list(kwargs['install_requires'])
    requirements += [r for extra in kwargs['extras_require'].values() for r in extra]
    assert not [r for r in requirements if '==' in r]
    names = {re.match(r'[A-Za-z0-9_.-]+', r).group().lower() for r in kwargs['install_requires']}
    assert names == {'torch', 'numpy', 'mmengine', 'mmcv'}
