"""The Slicer module file ``DicomServers/DicomServers.py`` against the fake Slicer boundary.

Only ``slicer``/``vtk`` are stand-ins (``Testing/harness/fake_slicer.py``); the settings are a
real PySide6 ``QSettings`` INI file (Slicer.ini's format), the registry and the requirement
checks are the real core.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from DicomServersLib import requirements as dependency_rules
from DicomServersLib.secret_store import MemorySecretStore
from harness import fake_slicer
from PySide6 import QtCore, QtWidgets

MODULE_DIR = fake_slicer.MODULE_DIR


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[fake_slicer.FakeSlicer]:
    """Slicer under ``--testing`` (temporary settings), without ``slicer.packaging`` (5.10)."""
    with fake_slicer.install(tmp_path / "Slicer.ini") as installed:
        yield installed


@pytest.fixture
def restore_packages() -> Iterator[None]:
    """Put the session's own core modules back after a test that reloads them."""
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name.split(".")[0] in ("DicomServersLib", "DicomServersUI")
    }
    yield
    for name in [
        n for n in sys.modules if n.split(".")[0] in ("DicomServersLib", "DicomServersUI")
    ]:
        del sys.modules[name]
    sys.modules.update(saved)


def read_ini(path: Path, key: str) -> object:
    """Read a key back through a second, independent QSettings."""
    return QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat).value(key)


# -- module metadata ---------------------------------------------------------------------------


def test_module_metadata(fake: fake_slicer.FakeSlicer) -> None:
    module = fake_slicer.import_module_file()
    parent = fake_slicer.module_parent()
    instance = module.DicomServers(parent)
    assert parent.title == "DICOM Servers"
    assert parent.categories == ["Informatics"]
    assert parent.dependencies == []
    assert parent.contributors and all("(" in c for c in parent.contributors)
    assert "https://github.com/dicomservers/SlicerDicomServers" in parent.helpText
    assert parent.acknowledgementText.strip()
    assert parent.iconPath == str(MODULE_DIR / "Resources" / "Icons" / "DicomServers.png")
    assert fake.slicer.selfTests["DicomServers"] == instance.runTest


def test_module_classes_follow_slicer_naming(fake: fake_slicer.FakeSlicer) -> None:
    module = fake_slicer.import_module_file()
    slm = fake.slicer.ScriptedLoadableModule
    assert issubclass(module.DicomServersWidget, slm.ScriptedLoadableModuleWidget)
    assert issubclass(module.DicomServersLogic, slm.ScriptedLoadableModuleLogic)
    assert issubclass(module.DicomServersTest, slm.ScriptedLoadableModuleTest)
    assert (
        module.DicomServersLogic(secrets=MemorySecretStore(values={})).moduleName == "DicomServers"
    )


# -- logic ---------------------------------------------------------------------------------------


def test_logic_keeps_the_list_in_slicer_settings(fake: fake_slicer.FakeSlicer) -> None:
    module = fake_slicer.import_module_file()
    secrets = MemorySecretStore(values={})
    logic = module.DicomServersLogic(secrets=secrets)
    registry = logic.registry
    assert logic.registry is registry
    registry.add(name="Orthanc", host="127.0.0.1", port=4242, rest_password="s3cret")
    registry.add()
    registry.duplicate("Orthanc")
    registry.move("New server", 0)
    assert [s.name for s in logic.servers()] == ["New server", "Orthanc", "Orthanc (2)"]

    document = json.loads(str(read_ini(fake.settings_path, "DicomServers/Servers")))
    assert [s["name"] for s in document["servers"]] == ["New server", "Orthanc", "Orthanc (2)"]
    assert "s3cret" not in fake.settings_path.read_text(encoding="utf-8")

    fresh = module.DicomServersLogic(secrets=secrets)
    assert [s.name for s in fresh.servers()] == ["New server", "Orthanc", "Orthanc (2)"]
    assert fresh.servers()[1].rest_password == "s3cret"
    assert fresh.loadProblems() == []


def test_logic_reports_a_corrupted_list(fake: fake_slicer.FakeSlicer) -> None:
    fake.settings.setValue("DicomServers/Servers", "{not json")
    fake.settings.sync()
    module = fake_slicer.import_module_file()
    logic = module.DicomServersLogic(secrets=MemorySecretStore(values={}))
    assert logic.servers() == []
    (problem,) = logic.loadProblems()
    assert "DicomServers/Servers is not valid JSON" in problem


def test_logic_secret_store_from_environment(
    fake: fake_slicer.FakeSlicer, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = fake_slicer.import_module_file()
    monkeypatch.setenv("DICOMSERVERS_SECRET_STORE", "memory")
    logic = module.DicomServersLogic()
    assert logic.registry.store.secrets.kind == "memory"
    monkeypatch.setenv("DICOMSERVERS_SECRET_STORE", "vault")
    wrong = module.DicomServersLogic()
    assert wrong.registry.store.secrets.kind == "memory"
    assert "DICOMSERVERS_SECRET_STORE" in wrong.secretStoreWarning
    assert "only remembered for this session" in wrong.secretStoreWarning


# -- the module's own Slicer self-test -----------------------------------------------------------


def test_self_test_passes_on_testing_settings(fake: fake_slicer.FakeSlicer) -> None:
    module = fake_slicer.import_module_file()
    module.DicomServers(fake_slicer.module_parent())
    fake.slicer.selfTests["DicomServers"]()
    assert "Test passed" in fake.calls.delay
    assert read_ini(fake.settings_path, "DicomServers/Servers") is None  # cleaned up


def test_self_test_outside_testing_mode_leaves_user_list_alone(tmp_path: Path) -> None:
    with fake_slicer.install(tmp_path / "Slicer.ini", testing=False) as fake:
        fake.settings.setValue("DicomServers/Servers", '{"schema_version":1,"servers":[]}')
        fake.settings.setValue("DICOM/ServerNodeCount", 2)
        fake.settings.sync()
        before = fake.settings_path.read_bytes()
        module = fake_slicer.import_module_file()
        test = module.DicomServersTest()
        test.runTest()
        assert fake.settings_path.read_bytes() == before
        assert "Test passed" in fake.calls.delay


# -- Python dependencies -------------------------------------------------------------------------


def expected_requirements() -> list[str]:
    """The requirement lines for the pydicom of this environment (3.x or 2.4)."""
    pydicom_version = dependency_rules.installed_version("pydicom")
    assert pydicom_version is not None
    name = dependency_rules.requirements_file_for(pydicom_version)
    return [str(r) for r in dependency_rules.read_requirements(MODULE_DIR / "Resources" / name)]


def test_dependencies_use_pip_ensure_on_slicer_512(tmp_path: Path) -> None:
    with fake_slicer.install(tmp_path / "Slicer.ini", with_packaging=True) as fake:
        module = fake_slicer.import_module_file()
        module.ensurePythonDependencies()
        ((requirements, options),) = fake.calls.pip_ensure
        assert requirements == expected_requirements()
        assert options == {"requester": "DICOM Servers"}
        assert fake.calls.pip_install == []


def test_dependencies_already_installed_on_slicer_510(tmp_path: Path) -> None:
    # pynetdicom of the matching series is installed in both test environments
    with fake_slicer.install(tmp_path / "Slicer.ini", testing=False) as fake:
        module = fake_slicer.import_module_file()
        module.ensurePythonDependencies()
        assert fake.calls.confirm == [] and fake.calls.pip_install == []


@pytest.fixture
def unmet_requirements(tmp_path: Path) -> Path:
    """Module resources whose requirement files ask for a pynetdicom that does not exist yet."""
    resources = tmp_path / "Resources"
    resources.mkdir()
    for name in (dependency_rules.REQUIREMENTS_FILE, dependency_rules.REQUIREMENTS_FILE_PYDICOM2):
        (resources / name).write_text("# future\npynetdicom>=99\n", encoding="utf-8")
    return resources


def test_dependencies_missing_on_slicer_510_asks_then_installs(
    tmp_path: Path, unmet_requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_slicer.install(tmp_path / "Slicer.ini", testing=False) as fake:
        module = fake_slicer.import_module_file()
        monkeypatch.setattr(module, "RESOURCES_DIR", str(unmet_requirements))
        module.ensurePythonDependencies()
        (question,) = fake.calls.confirm
        assert "pynetdicom>=99" in question
        assert fake.calls.pip_install == [["pynetdicom>=99"]]


def test_dependencies_declined_on_slicer_510(
    tmp_path: Path, unmet_requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_slicer.install(tmp_path / "Slicer.ini", testing=False) as fake:
        fake.confirm_answer = False
        module = fake_slicer.import_module_file()
        monkeypatch.setattr(module, "RESOURCES_DIR", str(unmet_requirements))
        with pytest.raises(RuntimeError, match=r"pynetdicom>=99 was declined"):
            module.ensurePythonDependencies()
        assert fake.calls.pip_install == []


def test_dependencies_never_installed_under_testing(
    fake: fake_slicer.FakeSlicer, unmet_requirements: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = fake_slicer.import_module_file()
    monkeypatch.setattr(module, "RESOURCES_DIR", str(unmet_requirements))
    module.ensurePythonDependencies()
    assert fake.calls.confirm == [] and fake.calls.pip_install == []


# -- reload ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_packages")
def test_reload_packages_reimports_core_consistently(fake: fake_slicer.FakeSlicer) -> None:
    module = fake_slicer.import_module_file()
    old_registry = sys.modules["DicomServersLib.registry"]
    old_server = sys.modules["DicomServersLib.server"]
    names = module.reloadPackages()
    assert "DicomServersLib.registry" in names and "DicomServersLib.server" in names
    new_registry = sys.modules["DicomServersLib.registry"]
    assert new_registry is not old_registry
    assert sys.modules["DicomServersLib.server"] is not old_server
    assert new_registry.DicomServer is sys.modules["DicomServersLib.server"].DicomServer


# -- widget ----------------------------------------------------------------------------------------


@pytest.fixture
def panel_parent(fake: fake_slicer.FakeSlicer) -> Iterator[QtWidgets.QWidget]:
    """A module-panel parent widget with a vertical layout (as Slicer gives the module)."""
    QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    parent = QtWidgets.QWidget()
    parent.setLayout(QtWidgets.QVBoxLayout())
    yield parent
    parent.deleteLater()


UI_TEXT = """<?xml version="1.0" encoding="UTF-8"?>
<ui version="4.0">
 <class>DicomServers</class>
 <widget class="QWidget" name="DicomServers">
  <layout class="QVBoxLayout" name="verticalLayout">
   <item><widget class="QLabel" name="statusLabel"><property name="text"><string>Hi</string></property></widget></item>
  </layout>
 </widget>
</ui>
"""


@pytest.mark.gui
@pytest.mark.usefixtures("restore_packages")
def test_widget_setup_with_and_without_designer_file(
    fake: fake_slicer.FakeSlicer,
    panel_parent: QtWidgets.QWidget,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = fake_slicer.import_module_file()
    resources = tmp_path / "Resources"
    (resources / "UI").mkdir(parents=True)
    monkeypatch.setattr(
        module.DicomServersWidget, "resourcePath", lambda self, name: str(resources / name)
    )

    bare = module.DicomServersWidget(panel_parent)
    bare.setup()
    assert bare.ui is None
    assert type(bare.panel).__name__ == "DicomServersPanel"  # the server list (issue 5)
    assert isinstance(bare.panel.widget, QtWidgets.QWidget)
    assert bare.panel.registry is bare.logic.registry
    assert isinstance(bare.logic, module.DicomServersLogic)

    (resources / "UI" / "DicomServers.ui").write_text(UI_TEXT, encoding="utf-8")
    widget = module.DicomServersWidget(panel_parent)
    widget.setup()
    assert widget.ui.statusLabel.text() == "Hi"

    widget.onReload()
    assert fake.calls.reload == ["DicomServers"]
    widget.cleanup()
    assert widget.panel is None


def test_fake_boundary_is_removed_afterwards(tmp_path: Path) -> None:
    before = {name: sys.modules.get(name) for name in fake_slicer.FAKE_MODULES}
    with fake_slicer.install(tmp_path / "Slicer.ini"):
        fake_slicer.import_module_file()
        assert "slicer" in sys.modules
    assert {name: sys.modules.get(name) for name in fake_slicer.FAKE_MODULES} == before
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_widget_setup_offers_the_packages_and_survives_a_refusal(
    tmp_path: Path,
    unmet_requirements: Path,
    panel_parent: QtWidgets.QWidget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opening the module offers to install pynetdicom; declining leaves a working panel."""
    with fake_slicer.install(tmp_path / "Slicer.ini", testing=False) as fake:
        fake.confirm_answer = False
        module = fake_slicer.import_module_file()
        monkeypatch.setattr(module, "RESOURCES_DIR", str(unmet_requirements))
        widget = module.DicomServersWidget(panel_parent)
        widget.setup()
        (question,) = fake.calls.confirm
        assert "pynetdicom>=99" in question and fake.calls.pip_install == []
        assert type(widget.panel).__name__ == "DicomServersPanel"
        widget.cleanup()
