# Build the Windows bundle (build\dist\crypto-terminal\), run its selfcheck, zip it, and compile
# the installer (build\installer.nsi) when NSIS's makensis is on PATH.
#
#   powershell -ExecutionPolicy Bypass -File build\build.ps1
#
# Needs Python 3.11 or newer (the py launcher, or python on PATH). Uses .venv in the repository,
# creating it if missing, and installs the project with its "build" extra (PyInstaller) there.
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = Split-Path -Parent $PSScriptRoot
Set-Location $Root

# Native programs report failure through their exit code, which PowerShell does not turn into
# an error; stop the build at the first one that fails.
function Invoke-Checked {
    param([string]$Program, [string[]]$Arguments)
    & $Program @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw "$Program $($Arguments -join ' ') failed with exit code $LASTEXITCODE"
    }
}

$Python = Join-Path $Root ".venv\Scripts\python.exe"
if (-not (Test-Path $Python)) {
    if (Get-Command py -ErrorAction SilentlyContinue) {
        Invoke-Checked "py" @("-3", "-m", "venv", ".venv")
    } else {
        Invoke-Checked "python" @("-m", "venv", ".venv")
    }
}
Invoke-Checked $Python @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
Invoke-Checked $Python @("-m", "pip", "install", "--quiet", "-e", ".[build]")

Invoke-Checked $Python @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
    "--distpath", "build\dist", "--workpath", "build\work", "build\terminal.spec")

$Bundle = Join-Path $Root "build\dist\crypto-terminal"
Write-Host "smoke test: $Bundle\crypto-terminal-cli.exe selfcheck --gui"
# Offscreen, as on a build server without a desktop; run from elsewhere, so nothing is found
# by accident in the checkout.
$env:QT_QPA_PLATFORM = "offscreen"
Push-Location $env:TEMP
try {
    Invoke-Checked (Join-Path $Bundle "crypto-terminal-cli.exe") @("selfcheck", "--gui")
} finally {
    Pop-Location
    Remove-Item Env:QT_QPA_PLATFORM
}

$Version = (& $Python -c "import terminal; print(terminal.__version__)").Trim()
$Zip = Join-Path $Root "build\dist\crypto-terminal-$Version-windows.zip"
if (Test-Path $Zip) {
    Remove-Item $Zip
}
Compress-Archive -Path $Bundle -DestinationPath $Zip
Write-Host "bundle:  $Bundle"
Write-Host "archive: $Zip"

$MakeNsis = Get-Command makensis -ErrorAction SilentlyContinue
if ($MakeNsis) {
    Invoke-Checked $MakeNsis.Source @("/V2", "/DVERSION=$Version", "build\installer.nsi")
    Write-Host "installer: build\dist\crypto-terminal-$Version-windows-setup.exe"
} else {
    Write-Host "makensis is not on PATH: no installer built (NSIS 3: https://nsis.sourceforge.io)"
}
