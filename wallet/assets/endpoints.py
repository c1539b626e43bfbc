"""The configured assets: what wallets can hold, with their decimals, kind and chain."""

from fastapi import APIRouter, Depends

from wallet.api.auth import Reader
from wallet.api.dependencies import CatalogueDep, known_query_parameters
from wallet.api.problems import problem_responses
from wallet.assets.schemas import AssetList, AssetOut

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    prefix="/v1/assets",
    tags=["assets"],
    responses=problem_responses(401, 403, 500),
)


@router.get("", name="list", summary="List assets")
async def list_assets(principal: Reader, catalogue: CatalogueDep) -> AssetList:
    return AssetList(data=[AssetOut.of(asset, catalogue) for asset in catalogue.assets.values()])
