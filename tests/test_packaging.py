"""Versions are pinned once (requirements/constraints.txt); the README's table
and the install script agree with it; setup.py states ranges, not pins. The
package ships no file that runs at interpreter start (no .pth) and no C++."""

import ast
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from _helpers import REPO_ROOT, run


def constraints(name: str = 'constraints.txt') -> dict:
    """package name -> specifier text, e.g. {'torch': '==2.13.0', 'numpy': '<2'}."""
    pins = {}
    with open(osp.join(REPO_ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                name, spec = re.match(r'([A-Za-z0-9_.-]+)\s*(.*)', line).groups()
                pins[name.lower()] = spec.replace(' ', '')
    return pins


def readme_versions(table: str = '### Frozen stack') -> dict:
    """package name -> specifier of one version table of the README."""
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        text = f.read()
    section = text[text.index(table) :]
    section = section[section.index('| package |') :]
    section = section[: section.index('\n\n')]  # the table ends at the first blank line
    rows = re.findall(r'^\| ([A-Za-z0-9_.-]+) \| ([^|]+) \|', section, re.M)
    return {name.lower(): spec.strip().replace(' ', '') for name, spec in rows if name != 'package'}


def test_readme_version_table_is_the_constraints_file():
    assert readme_versions() == constraints()


def test_readme_maintained_stack_table_agrees_with_its_constraints_file():
    """Every row of the maintained stack's table is its constraints file's pin."""
    table = readme_versions('### Maintained stack')
    pins = constraints('constraints-onedl.txt')
    assert len(table) > 10
    for name, spec in table.items():
        assert pins.get(name) == spec, (name, spec, pins.get(name))


def install_script() -> str:
    with open(osp.join(REPO_ROOT, 'tools', 'install.sh')) as f:
        return f.read()


def test_install_script_takes_every_version_from_the_constraints_file():
    script = install_script()
    assert 'PIP=("$PY" -m pip install --constraint "$CONSTRAINTS")' in script
    pip_lines = [
        line
        for line in script.splitlines()
        if '"${PIP[@]}"' in line or '"${INDEX_PIP[@]}"' in line or 'pip download' in line
    ]
    assert pip_lines
    for line in pip_lines:
        # a package argument with a version specifier, e.g. mmdet==3.3.0 or "numpy<2"
        assert not re.search(r'[A-Za-z0-9_"]\s*(==|<=|>=|<|>)\s*[0-9]', line), line
    assert set(re.findall(r'\$\(pinned ([a-z0-9_.-]+)\)', script)) <= set(constraints())
    # the tested torch + torchvision pair comes from the package index, under the constraints
    assert '"${INDEX_PIP[@]}" --constraint "$CONSTRAINTS" torch torchvision' in script
    assert re.search(r'^INDEX_PIP=\("\$PY" -m pip install --isolated\b', script, re.M)
    # the test tools are pinned too: .ci/run lints with ruff
    test_tools = next(line for line in pip_lines if 'pytest' in line).split()
    assert {'pytest', 'ruff'} <= set(test_tools) and 'ruff' in constraints()


def test_torchvision_pin_is_the_build_for_the_torch_pin():
    """torch 2.M.P goes with torchvision 0.(M+15).P (2.3.0 -> 0.18.0, 2.13.0 ->
    0.28.0): the pins and the rule install.sh uses for another torch agree."""
    pins = constraints()
    torch_version, torchvision_version = pins['torch'][2:], pins['torchvision'][2:]
    assert pins['torch'][:2] == pins['torchvision'][:2] == '=='
    awk = re.search(r"awk -F\. '([^']+)'", install_script()).group(1)
    matched = subprocess.run(
        ['awk', '-F.', awk],
        input=torch_version + '\n',
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    assert matched == torchvision_version
    for torch_v, expected in (('2.3.0', '0.18.0'), ('2.9.1', '0.24.1'), ('2.2.0', '')):
        out = subprocess.run(
            ['awk', '-F.', awk], input=torch_v + '\n', stdout=subprocess.PIPE, text=True, check=True
        ).stdout
        assert out == expected, (torch_v, out)


def test_install_script_leaves_no_pth_and_checks_it():
    """Nothing of the package may run at interpreter start: install.sh removes the
    editable install's .pth (site-packages/crossformer_mm links to the checkout)
    and its final check fails on any *crossformer*.pth."""
    script = install_script()
    assert [line for line in script.splitlines() if '-hook.pth' in line and '#' not in line] == [
        'rm -fv "$SITE/crossformer_mm-hook.pth"'
    ]  # only removed (left by earlier versions)
    assert 'rm -fv "$SITE"/__editable__.crossformer_mm-*.pth' in script
    assert "'*crossformer*.pth'" in script
    checked = script[script.index('step "check imports"') :]
    for name in ('torchvision', 'torchvision.ops', 'mmpose.apis', 'mmpretrain.models'):
        assert f"'{name}'" in checked, name


def test_setup_declares_ranges_not_pins():
    tree = ast.parse(open(osp.join(REPO_ROOT, 'setup.py')).read())
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'setup'
    )
    kwargs = {
        k.arg: ast.literal_eval(k.value)
        for k in call.keywords
        if k.arg in ('install_requires', 'extras_require')
    }
    requirements = list(kwargs['install_requires'])
    requirements += [r for extra in kwargs['extras_require'].values() for r in extra]
    assert not [r for r in requirements if '==' in r]
    names = {re.match(r'[A-Za-z0-9_.-]+', r).group().lower() for r in kwargs['install_requires']}
    # the core: the backbone and its layers (no toolbox, which is an extra)
    assert {'torch', 'numpy'} <= names <= {'torch', 'numpy', 'mmengine', 'mmcv'}


def setup_kwargs() -> dict:
    tree = ast.parse(open(osp.join(REPO_ROOT, 'setup.py')).read())
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'setup'
    )
    return {k.arg: k.value for k in call.keywords}


def test_setup_declares_the_license_of_the_license_file():
    kwargs = setup_kwargs()
    license_name = ast.literal_eval(kwargs['license'])
    with open(osp.join(REPO_ROOT, 'LICENSE')) as f:
        assert f.readline().strip() == f'{license_name} License'
    # a plain package: no extra top-level modules, no custom build step
    assert 'py_modules' not in kwargs and 'cmdclass' not in kwargs


@pytest.mark.slow
def test_wheel_ships_no_pth_and_no_cpp(tmp_path):
    """The wheel holds the package (with .mim tools and configs), its license,
    and no .pth (it would run at every interpreter start) or C++ source."""
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE', 'pyproject.toml'):
        shutil.copy(osp.join(REPO_ROOT, name), source / name)
    for name in ('crossformer_mm', 'tools', 'configs'):
        shutil.copytree(
            osp.join(REPO_ROOT, name),
            source / name,
            symlinks=True,
            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'),
        )
    run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            '--no-deps',
            '--no-build-isolation',
            '--no-index',
            '-q',
            '-w',
            str(tmp_path / 'dist'),
            str(source),
        ]
    )
    (wheel,) = (tmp_path / 'dist').glob('crossformer_mm-*.whl')
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    assert not [n for n in names if n.endswith(('.pth', '.cpp'))], names
    top_level = {n.split('/')[0] for n in names}
    assert {t for t in top_level if not t.endswith('.dist-info')} == {'crossformer_mm'}
    assert 'crossformer_mm/.mim/tools/train.py' in names
    assert 'crossformer_mm/compat.py' in names
    assert any(n.endswith('.dist-info/licenses/LICENSE') for n in names), names
    assert re.search(r'^License(-Expression)?: MIT$', metadata, re.M), metadata[:800]
