"""The operator API: create, inspect, deactivate customers and rotate their keys."""

from __future__ import annotations

from typing import Annotated

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, post
from litestar.params import JSONBody, Parameter, PathParameter

from hermes.application.use_cases.create_customer import CreateCustomer
from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
from hermes.application.use_cases.get_customer import GetCustomer, ListCustomers
from hermes.application.use_cases.rotate_api_key import RotateApiKey
from hermes.entrypoints.http.problems import problem_responses
from hermes.entrypoints.http.schemas import CreateCustomerBody, CustomerView, NewCustomerView, RotatedKey

CustomerId = Annotated[str, PathParameter(max_length=64)]


def _customer_action(action: str, use_case: type) -> post:
    """`POST /admin/customers/{id}/{action}`: one use case on one customer, described by its docstring."""
    return post(
        f"/{{customer_id:str}}/{action}",
        status_code=200,
        description=use_case.__doc__,
        responses=problem_responses(404),
    )


class AdminApi(Controller):
    path = "/admin/customers"
    tags = ["operator"]
    security = [{"adminToken": []}]

    @post("/", status_code=201, description=CreateCustomer.__doc__, responses=problem_responses(409))
    @inject
    async def create(self, data: JSONBody[CreateCustomerBody], create: FromDishka[CreateCustomer]) -> NewCustomerView:
        made = await create(data.email, data.plan)
        c = made.customer
        return NewCustomerView(id=c.id, api_key=made.api_key, email=c.email, plan=c.plan.value, active=c.active)

    @get("/", description=ListCustomers.__doc__, responses=problem_responses())
    @inject
    async def list_customers(
        self,
        list_customers: FromDishka[ListCustomers],
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> list[CustomerView]:
        return [CustomerView.of(c) for c in await list_customers(limit, after)]

    @get("/{customer_id:str}", description=GetCustomer.__doc__, responses=problem_responses(404))
    @inject
    async def get_customer(self, customer_id: CustomerId, get_customer: FromDishka[GetCustomer]) -> CustomerView:
        return CustomerView.of(await get_customer(customer_id))

    @_customer_action("deactivate", DeactivateCustomer)
    @inject
    async def deactivate(self, customer_id: CustomerId, deactivate: FromDishka[DeactivateCustomer]) -> CustomerView:
        return CustomerView.of(await deactivate(customer_id))

    @_customer_action("rotate-key", RotateApiKey)
    @inject
    async def rotate_key(self, customer_id: CustomerId, rotate: FromDishka[RotateApiKey]) -> RotatedKey:
        return RotatedKey(id=customer_id, api_key=await rotate(customer_id))
